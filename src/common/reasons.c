/*
 * reasons.c - the text of every reason word: the word itself, as named in
 * reasons.def.
 */
#include "common/reasons.h"

#define HP_REASON(word, who) const char HP_R_##word[] = #word;
#include "common/reasons.def"
#undef HP_REASON
