/*
 * Packs MiniMalloc's input.12.csv through the C API and checks the plan in C, then walks the
 * error paths. Built and run by tests/tests/c_api.rs (C11, -Wall -Wextra -Wpedantic -Werror,
 * and once more with ASan+UBSan). Exit status 0 means every check passed.
 */
#include "memplan.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"

struct buffer {
    const char *id;
    uint64_t lower, upper, size;
};

/* MiniMalloc input.12.csv: id, lower, upper, size. Optimal peak 12 = max load. */
static const struct buffer INPUT_12[] = {
    {"b1", 0, 3, 4}, {"b2", 3, 9, 4}, {"b3", 0, 9, 4}, {"b4", 9, 21, 4}, {"b5", 0, 21, 4},
};
#define N_INPUT_12 (sizeof INPUT_12 / sizeof INPUT_12[0])

static mp_result add(mp_packer *p, const char *id, uint64_t lower, uint64_t upper,
                     uint64_t size, uint64_t alignment, size_t *out_index) {
    return mp_packer_add_buffer(p, id, strlen(id), lower, upper, size, alignment, out_index);
}

static void add_input_12(mp_packer *p) {
    size_t i;
    for (i = 0; i < N_INPUT_12; i++) {
        size_t index = 99;
        CHECK_RC(add(p, INPUT_12[i].id, INPUT_12[i].lower, INPUT_12[i].upper, INPUT_12[i].size,
                     0, &index),
                 MP_RESULT_OK);
        CHECK(index == i);
    }
}

/* The last-error text of `p` (static buffer). */
static const char *last_error(const mp_packer *p) {
    static char buf[256];
    size_t n = 0;
    buf[0] = '\0';
    CHECK_RC(mp_packer_last_error(p, buf, sizeof buf, &n), MP_RESULT_OK);
    CHECK(n < sizeof buf && strlen(buf) == n);
    return buf;
}

static void test_plan(void) {
    mp_packer *p = NULL;
    uint64_t offsets[N_INPUT_12];
    uint64_t peak = 0, best = 0, max_load = 0, nodes = 0, off = 0;
    bool optimal = false, infeasible = true;
    size_t len = 0, i, j;

    CHECK_RC(mp_packer_new(&p), MP_RESULT_OK);
    CHECK(p != NULL);
    add_input_12(p);
    CHECK_RC(mp_packer_len(p, &len), MP_RESULT_OK);
    CHECK(len == N_INPUT_12);
    CHECK_RC(mp_packer_max_load(p, &max_load), MP_RESULT_OK);
    CHECK(max_load == 12);

    CHECK_RC(mp_packer_pack(p, NULL), MP_RESULT_OK);
    CHECK_RC(mp_packer_peak(p, &peak), MP_RESULT_OK);
    CHECK(peak == 12);
    CHECK_RC(mp_packer_best_peak(p, &best), MP_RESULT_OK);
    CHECK(best == 12);
    CHECK_RC(mp_packer_is_optimal(p, &optimal), MP_RESULT_OK);
    CHECK(optimal);
    CHECK_RC(mp_packer_is_proven_infeasible(p, &infeasible), MP_RESULT_OK);
    CHECK(!infeasible);
    CHECK_RC(mp_packer_nodes(p, &nodes), MP_RESULT_OK);
    CHECK(strcmp(last_error(p), "") == 0);

    /* Every offset: inside the arena, and no two buffers alive together share a byte. */
    for (i = 0; i < N_INPUT_12; i++) {
        offsets[i] = UINT64_MAX;
        CHECK_RC(mp_packer_offset(p, i, &offsets[i]), MP_RESULT_OK);
        CHECK(offsets[i] + INPUT_12[i].size <= peak);
        printf("%s: [%" PRIu64 ", %" PRIu64 ") at offset %" PRIu64 "\n", INPUT_12[i].id,
               INPUT_12[i].lower, INPUT_12[i].upper, offsets[i]);
    }
    for (i = 0; i < N_INPUT_12; i++) {
        for (j = i + 1; j < N_INPUT_12; j++) {
            const struct buffer *a = &INPUT_12[i], *b = &INPUT_12[j];
            int live_together = a->lower < b->upper && b->lower < a->upper;
            int share_bytes = offsets[i] < offsets[j] + b->size && offsets[j] < offsets[i] + a->size;
            if (live_together && share_bytes) {
                fprintf(stderr, "overlap: %s and %s\n", a->id, b->id);
                failures++;
            }
        }
    }
    printf("peak %" PRIu64 " (max load %" PRIu64 "), optimal, %" PRIu64 " nodes\n", peak, max_load,
           nodes);

    off = 777;
    CHECK_RC(mp_packer_offset(p, N_INPUT_12, &off), MP_RESULT_INDEX_OUT_OF_RANGE);
    CHECK(off == 777); /* out-params are written only on success */
    mp_packer_free(p);
}

static void test_alignment_and_options(void) {
    mp_packer *p = NULL;
    mp_pack_options options;
    size_t index = 0;
    uint64_t off = 1, peak = 0;

    CHECK(sizeof(mp_pack_options) == 32);
    CHECK(offsetof(mp_pack_options, flags) == 0);
    CHECK(offsetof(mp_pack_options, capacity) == 8);
    CHECK(offsetof(mp_pack_options, max_nodes) == 16);
    CHECK(offsetof(mp_pack_options, time_limit_ms) == 24);

    CHECK_RC(mp_packer_new(&p), MP_RESULT_OK);
    CHECK_RC(add(p, "odd", 0, 2, 3, 0, &index), MP_RESULT_OK);
    CHECK_RC(add(p, "aligned", 0, 2, 8, 64, &index), MP_RESULT_OK);
    CHECK(index == 1);

    memset(&options, 0, sizeof options);
    options.flags = MP_PACK_MAX_NODES | MP_PACK_TIME_LIMIT;
    options.max_nodes = 1000;
    options.time_limit_ms = 1000;
    CHECK_RC(mp_packer_pack(p, &options), MP_RESULT_OK);
    CHECK_RC(mp_packer_offset(p, 1, &off), MP_RESULT_OK);
    CHECK(off % 64 == 0);
    CHECK_RC(mp_packer_peak(p, &peak), MP_RESULT_OK);
    CHECK(peak >= 11);

    options.flags = 1u << 30;
    CHECK_RC(mp_packer_pack(p, &options), MP_RESULT_INVALID_ARGUMENT);
    CHECK(strstr(last_error(p), "flags") != NULL);
    CHECK_RC(mp_packer_peak(p, &peak), MP_RESULT_NOT_PACKED);
    mp_packer_free(p);
}

static void test_errors(void) {
    mp_packer *p = NULL;
    mp_pack_options options;
    size_t index = 42, len = 0;
    uint64_t value = 42;
    bool flag = false;

    /* NULL handle and NULL out-params. */
    CHECK_RC(mp_packer_new(NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(add(NULL, "x", 0, 1, 1, 0, &index), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_packer_pack(NULL, NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_packer_peak(NULL, &value), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_packer_len(NULL, &len), MP_RESULT_NULL_PARAMETER);
    mp_packer_free(NULL); /* a no-op */

    CHECK_RC(mp_packer_new(&p), MP_RESULT_OK);
    CHECK_RC(mp_packer_add_buffer(p, NULL, 0, 0, 1, 1, 0, &index), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(add(p, "x", 0, 1, 1, 0, NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_packer_peak(p, NULL), MP_RESULT_NULL_PARAMETER);

    /* Validation errors, each with its own code and a detail naming the id. */
    CHECK_RC(add(p, "zero", 0, 1, 0, 0, &index), MP_RESULT_ZERO_SIZE);
    CHECK(strstr(last_error(p), "\"zero\"") != NULL);
    CHECK_RC(add(p, "empty", 4, 4, 1, 0, &index), MP_RESULT_EMPTY_LIFETIME);
    CHECK(strstr(last_error(p), "\"empty\"") != NULL);
    CHECK_RC(add(p, "reversed", 5, 4, 1, 0, &index), MP_RESULT_EMPTY_LIFETIME);
    CHECK_RC(add(p, "align", 0, 1, 1, 3, &index), MP_RESULT_BAD_ALIGNMENT);
    CHECK_RC(mp_packer_add_buffer(p, "\xff\xfe", 2, 0, 1, 1, 0, &index), MP_RESULT_INVALID_UTF8);
    CHECK_RC(add(p, "big", 0, 1, UINT64_MAX, 0, &index), MP_RESULT_OK);
    CHECK_RC(add(p, "bigger", 0, 1, 1, 0, &index), MP_RESULT_OVERFLOW);
    CHECK(strstr(last_error(p), "\"bigger\"") != NULL);
    CHECK_RC(add(p, "big", 2, 3, 1, 0, &index), MP_RESULT_DUPLICATE_ID);
    CHECK(strcmp(last_error(p), "duplicate buffer id \"big\"") == 0);
    CHECK(index == 0); /* only the successful add wrote it */
    CHECK_RC(mp_packer_len(p, &len), MP_RESULT_OK);
    CHECK(len == 1);
    mp_packer_free(p);

    /* Reading before a pack, and after an add that follows a pack. */
    CHECK_RC(mp_packer_new(&p), MP_RESULT_OK);
    add_input_12(p);
    CHECK_RC(mp_packer_offset(p, 0, &value), MP_RESULT_NOT_PACKED);
    CHECK_RC(mp_packer_is_optimal(p, &flag), MP_RESULT_NOT_PACKED);
    CHECK_RC(mp_packer_pack(p, NULL), MP_RESULT_OK);
    CHECK_RC(add(p, "b6", 21, 30, 4, 0, &index), MP_RESULT_OK);
    CHECK_RC(mp_packer_peak(p, &value), MP_RESULT_NOT_PACKED);

    /* Capacity 8 < max load 12: CAPACITY_EXCEEDED, proven, best peak 12 readable. */
    memset(&options, 0, sizeof options);
    options.flags = MP_PACK_CAPACITY;
    options.capacity = 8;
    CHECK_RC(mp_packer_pack(p, &options), MP_RESULT_CAPACITY_EXCEEDED);
    value = 0;
    CHECK_RC(mp_packer_best_peak(p, &value), MP_RESULT_OK);
    CHECK(value == 12);
    CHECK_RC(mp_packer_is_proven_infeasible(p, &flag), MP_RESULT_OK);
    CHECK(flag);
    CHECK_RC(mp_packer_offset(p, 0, &value), MP_RESULT_NOT_PACKED);
    CHECK(strstr(last_error(p), "8 bytes") != NULL);
    printf("capacity 8: %s\n", last_error(p));

    options.capacity = 12;
    CHECK_RC(mp_packer_pack(p, &options), MP_RESULT_OK);
    CHECK_RC(mp_packer_peak(p, &value), MP_RESULT_OK);
    CHECK(value <= 12);
    mp_packer_free(p);
}

static void test_messages(void) {
    char buf[8];
    size_t n = 0, full = 0;
    uint32_t code;

    /* Sizing query, then exact fit, then truncation to 3 bytes + NUL. */
    CHECK_RC(mp_result_message(MP_RESULT_OK, NULL, 0, &full), MP_RESULT_OK);
    CHECK(full == strlen("success"));
    CHECK_RC(mp_result_message(MP_RESULT_OK, buf, full + 1, &n), MP_RESULT_OK);
    CHECK(n == full && strcmp(buf, "success") == 0);
    memset(buf, 'x', sizeof buf);
    CHECK_RC(mp_result_message(MP_RESULT_OK, buf, 4, &n), MP_RESULT_OK);
    CHECK(n == full && n >= 4); /* truncated exactly when n >= len */
    CHECK(strcmp(buf, "suc") == 0 && buf[4] == 'x');
    CHECK_RC(mp_result_message(MP_RESULT_OK, buf, 1, &n), MP_RESULT_OK);
    CHECK(buf[0] == '\0');
    CHECK_RC(mp_result_message(MP_RESULT_OK, buf, sizeof buf, NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_result_message(MP_RESULT_OK, NULL, 4, &n), MP_RESULT_NULL_PARAMETER);

    /* Every code has a message; unknown codes too. */
    for (code = MP_RESULT_OK; code <= MP_RESULT_OTHER_ERROR; code++) {
        CHECK_RC(mp_result_message(code, NULL, 0, &n), MP_RESULT_OK);
        CHECK(n > 0);
    }
    CHECK(strcmp(check_message(12345), "unknown mp_result code 12345") == 0);
    CHECK(strcmp(check_message(MP_RESULT_CAPACITY_EXCEEDED), "no plan within the capacity was found") == 0);
}

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", MP_VERSION_MAJOR, MP_VERSION_MINOR,
             MP_VERSION_PATCH);
    CHECK(mp_version() != NULL);
    CHECK(strcmp(mp_version(), expected) == 0);
}

int main(void) {
    test_plan();
    test_alignment_and_options();
    test_errors();
    test_messages();
    test_version();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("packer_example.c: all checks passed\n");
    return 0;
}
