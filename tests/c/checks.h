/*
 * The check macros the C test programs share: CHECK(cond) and CHECK_RC(expr, code) count
 * failures in `failures` and print where and why; a program exits non-zero when any failed.
 * Included once per program (each program is one translation unit).
 */
#ifndef MEMPLAN_TEST_CHECKS_H
#define MEMPLAN_TEST_CHECKS_H

#include "memplan.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static int failures = 0;

/* The text of result `code` (a static buffer: valid until the next call). */
static inline const char *check_message(uint32_t code) {
    static char buf[128];
    size_t n = 0;
    if (mp_result_message(code, buf, sizeof buf, &n) != MP_RESULT_OK) {
        return "(mp_result_message failed)";
    }
    return buf;
}

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

/* Checks that `expr` returns `code`, printing both codes and messages when it does not. */
#define CHECK_RC(expr, code)                                                            \
    do {                                                                                \
        mp_result rc_ = (expr);                                                         \
        if (rc_ != (code)) {                                                            \
            fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u", __FILE__,        \
                    __LINE__, #expr, (unsigned)rc_, check_message(rc_), (unsigned)(code)); \
            fprintf(stderr, " (%s)\n", check_message(code));                            \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

#endif
