/*
 * Serves allocations from a plan through the C API: builds a plan file in memory exactly as
 * the format in core/src/plan/format.rs describes it (magic, version 2, little-endian slots, FNV-1a
 * checksum), loads it with mp_allocator_new_guided, serves a prologue and three laps from
 * it (every request a hit), an unforeseen request (a miss that grows the arena), and checks
 * that corrupt, truncated and wrong-version plan files are refused. Built and run by
 * tests/tests/c_api.rs (C11, -Wall -Wextra -Wpedantic -Werror, and with ASan+UBSan).
 * Exit status 0 means every check passed.
 */
#include "memplan.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"

/* Little-endian writers into a growing byte buffer. */
static uint8_t plan[512];
static size_t len = 0;

static void put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) plan[len++] = (uint8_t)(v >> (8 * i));
}

static void slot(uint64_t size, uint64_t offset, uint32_t stream, uint32_t start, uint32_t end) {
    put(size, 8);
    put(offset, 8);
    put(stream, 4);
    put(start, 4);
    put(end, 4);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * Arena of 4096 bytes. Prologue: a persistent 1 KiB block at 0 (weights), then a 512-byte
 * block at 1024. Iteration: 1 KiB at 1024 during [0, 2), 2 KiB at 2048 during [1, 3).
 */
static void build_plan(uint32_t version) {
    len = 0;
    memcpy(plan, "MPPLAN\0\0", 8);
    len = 8;
    put(version, 4);
    put(4096, 8);
    put(2, 4);
    put(2, 4);
    slot(1024, 0, 0, 0, UINT32_MAX);
    slot(512, 1024, 0, 1, 3);
    slot(1024, 1024, 0, 0, 2);
    slot(2048, 2048, 0, 1, 3);
    put(fnv1a(plan, len), 8);
}

static mp_result load(mp_allocator **a) {
    *a = NULL;
    return mp_allocator_new_guided(plan, len, NULL, a);
}

int main(void) {
    mp_allocator *a = NULL;
    mp_guided_counters c;
    mp_alloc_stats s;
    uint64_t w = 0, p = 0, x = 0, y = 0, big = 0;

    build_plan(2);
    CHECK_RC(load(&a), MP_RESULT_OK);
    if (a == NULL) return 1;

    /* Prologue: weights, then a temporary. */
    CHECK_RC(mp_allocator_alloc(a, 1000, 0, &w), MP_RESULT_OK);
    CHECK_RC(mp_allocator_alloc(a, 512, 0, &p), MP_RESULT_OK);
    CHECK(p == w + 1024);
    CHECK_RC(mp_allocator_dealloc(a, p), MP_RESULT_OK);
    /* Three laps of the iteration: each request lands in its planned slot. */
    for (int lap = 0; lap < 3; lap++) {
        CHECK_RC(mp_allocator_alloc(a, 1024, 0, &x), MP_RESULT_OK);
        CHECK_RC(mp_allocator_alloc(a, 2000, 0, &y), MP_RESULT_OK);
        CHECK(x == w + 1024 && y == w + 2048);
        CHECK_RC(mp_allocator_dealloc(a, x), MP_RESULT_OK);
        CHECK_RC(mp_allocator_dealloc(a, y), MP_RESULT_OK);
    }
    CHECK_RC(mp_allocator_guided_counters(a, &c), MP_RESULT_OK);
    CHECK(c.hits == 8 && c.misses == 0 && c.laps == 4 && c.replans == 0);
    CHECK_RC(mp_allocator_stats(a, &s), MP_RESULT_OK);
    CHECK(s.allocated == 1000 && s.peak_allocated == 1000 + 1024 + 2000);
    CHECK(s.reserved == 2u << 20); /* the 4 KiB arena, in one 2 MiB page */

    /* Something the plan never saw: a miss, placed above everything live (the arena grows). */
    CHECK_RC(mp_allocator_alloc(a, 8u << 20, 0, &big), MP_RESULT_OK);
    CHECK(big >= w + 1024);
    CHECK_RC(mp_allocator_guided_counters(a, &c), MP_RESULT_OK);
    CHECK(c.misses == 1 && c.growths == 1);
    CHECK_RC(mp_allocator_stats(a, &s), MP_RESULT_OK);
    CHECK(s.reserved >= (8u << 20) + 1024 && s.reservations == 2);
    CHECK_RC(mp_allocator_dealloc(a, big), MP_RESULT_OK);
    CHECK_RC(mp_allocator_dealloc(a, big), MP_RESULT_UNKNOWN_ADDRESS);
    mp_allocator_free(a);

    /* Bad plan files are refused, and nothing is created. */
    build_plan(2);
    plan[40] ^= 1; /* a corrupt slot: the checksum no longer matches */
    CHECK_RC(load(&a), MP_RESULT_INVALID_PLAN);
    CHECK(a == NULL);
    build_plan(2);
    len -= 3; /* truncated */
    CHECK_RC(load(&a), MP_RESULT_INVALID_PLAN);
    build_plan(1); /* an older version */
    CHECK_RC(load(&a), MP_RESULT_INVALID_PLAN);
    CHECK_RC(mp_allocator_new_guided(NULL, 0, NULL, &a), MP_RESULT_INVALID_PLAN);
    CHECK_RC(mp_allocator_new_guided(NULL, 16, NULL, &a), MP_RESULT_NULL_PARAMETER);
    build_plan(2);
    CHECK_RC(mp_allocator_new_guided(plan, len, NULL, NULL), MP_RESULT_NULL_PARAMETER);

    /* An online allocator has no plan counters. */
    CHECK_RC(mp_allocator_new(NULL, &a), MP_RESULT_OK);
    CHECK_RC(mp_allocator_guided_counters(a, &c), MP_RESULT_INVALID_ARGUMENT);
    CHECK_RC(mp_allocator_guided_counters(NULL, &c), MP_RESULT_NULL_PARAMETER);
    mp_allocator_free(a);

    if (failures == 0) printf("guided allocator: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
