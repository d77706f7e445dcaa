/*
 * reasons.h - the reason words as constants, HP_R_<WORD>, one for each
 * line of reasons.def: a reason is spelled once, in that list, and a typo
 * in a constant's name fails to compile. Each is a string with static
 * storage, as hp_status's reason must be.
 */
#ifndef HP_COMMON_REASONS_H
#define HP_COMMON_REASONS_H

#define HP_REASON(word, who) extern const char HP_R_##word[];
#include "common/reasons.def"
#undef HP_REASON

#endif
