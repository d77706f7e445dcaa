/*
 * compiler.h - attribute macros and the always-on invariant check shared by
 * every Hopper module.
 */
#ifndef HP_COMMON_COMPILER_H
#define HP_COMMON_COMPILER_H

#include <stddef.h>

#define HP_MUST_USE     __attribute__((warn_unused_result))
#define HP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HP_NORETURN     __attribute__((noreturn))
#define HP_UNUSED       __attribute__((unused))
#define HP_LIKELY(x)    __builtin_expect(!!(x), 1)
#define HP_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define HP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The struct of type `type` whose member `member` p points at: how a part
 * gets back from the link it embeds in another's object (a commitq_op, a
 * waiter) to that object. */
#define HP_CONTAINER_OF(p, type, member) \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Stays on in release builds: going on after a broken invariant could write
 * bad data to disk, which is worse than stopping. */
#define HP_ASSERT(cond)                                \
    do {                                               \
        if (HP_UNLIKELY(!(cond))) {                    \
            hp_assert_fail(#cond, __FILE__, __LINE__); \
        }                                              \
    } while (0)

HP_NORETURN void hp_assert_fail(const char *cond, const char *file, int line);

#endif
