/*
 * Drives memplan's rematerialization runtime (mp_remat_*) through the C API: a forward pass of
 * a chain of activations under a budget that holds only three of them, then a backward pass
 * that needs them again in reverse order. The program mirrors what the runtime tells it to do
 * (each action list replayed in order) and checks, action by action: an evicted tensor was
 * resident, a (re)computed tensor was not, every parent of a (re)computed tensor is resident
 * at that moment, and resident bytes never exceed the budget. Built and run by
 * tests/tests/c_api.rs (C11, -Wall -Wextra -Wpedantic -Werror, and with ASan+UBSan).
 * Exit status 0 means every check passed.
 */
#include "memplan.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

enum { LAYERS = 10, MAX_T = 64 };
static const uint64_t WEIGHT = 64, ACT = 100, BUDGET = 64 + 3 * 100;

/* The caller's mirror of the runtime. */
static uint64_t size_of_t[MAX_T];
static uint32_t parents_of[MAX_T][2];
static size_t n_parents_of[MAX_T];
static int resident[MAX_T];
static uint64_t memory = 0;
static unsigned evictions = 0, recomputes = 0;

/* Fetches the last call's actions (count, then fill) and replays them on the mirror. */
static void replay(mp_remat *r) {
    size_t n = 0;
    CHECK_RC(mp_remat_actions(r, NULL, 0, &n), MP_RESULT_OK);
    if (n == 0) {
        return;
    }
    mp_remat_action *acts = calloc(n, sizeof *acts);
    CHECK(acts != NULL);
    if (acts == NULL) {
        return;
    }
    if (n > 1) {
        size_t m = 0;
        /* Too small an array: refused, the required length is reported by a sizing call. */
        CHECK_RC(mp_remat_actions(r, acts, n - 1, &m), MP_RESULT_INVALID_ARGUMENT);
    }
    size_t got = 0;
    CHECK_RC(mp_remat_actions(r, acts, n, &got), MP_RESULT_OK);
    CHECK(got == n);
    for (size_t i = 0; i < n; i++) {
        uint32_t t = acts[i].tensor;
        CHECK(t < MAX_T);
        if (t >= MAX_T) {
            break;
        }
        if (acts[i].kind == MP_REMAT_EVICT) {
            CHECK(resident[t]);
            resident[t] = 0;
            memory -= size_of_t[t];
            evictions++;
        } else {
            CHECK(acts[i].kind == MP_REMAT_COMPUTE || acts[i].kind == MP_REMAT_RECOMPUTE);
            CHECK(!resident[t]);
            for (size_t k = 0; k < n_parents_of[t]; k++) {
                CHECK(resident[parents_of[t][k]]);
            }
            resident[t] = 1;
            memory += size_of_t[t];
            CHECK(memory <= BUDGET);
            if (acts[i].kind == MP_REMAT_RECOMPUTE) {
                recomputes++;
            }
        }
    }
    free(acts);
}

static uint32_t add(mp_remat *r, uint64_t size, uint64_t cost, const uint32_t *parents, size_t np,
                    uint32_t flags) {
    uint32_t t = UINT32_MAX;
    /* The mirror must know the tensor before replaying its own COMPUTE: ids are dense. */
    mp_remat_counters st;
    CHECK_RC(mp_remat_stats(r, &st), MP_RESULT_OK);
    uint32_t next = (uint32_t)st.tensors;
    CHECK(next < MAX_T);
    size_of_t[next] = size;
    n_parents_of[next] = np;
    for (size_t k = 0; k < np; k++) {
        parents_of[next][k] = parents[k];
    }
    CHECK_RC(mp_remat_register(r, size, cost, parents, np, flags, &t), MP_RESULT_OK);
    CHECK(t == next);
    replay(r);
    return t;
}

int main(void) {
    mp_remat *r = NULL;
    CHECK_RC(mp_remat_new(BUDGET, 99, &r), MP_RESULT_INVALID_ARGUMENT);
    CHECK_RC(mp_remat_new(BUDGET, MP_REMAT_HEURISTIC_DTR, NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_remat_new(BUDGET, MP_REMAT_HEURISTIC_DTR, &r), MP_RESULT_OK);
    if (r == NULL) {
        return 1;
    }

    uint32_t w = add(r, WEIGHT, 0, NULL, 0, MP_REMAT_CONSTANT);
    uint32_t act[LAYERS];
    for (int i = 0; i < LAYERS; i++) {
        uint32_t p[2] = {i == 0 ? w : act[i - 1], w};
        act[i] = add(r, ACT, 10 + (uint64_t)i, p, 2, 0);
    }
    /* Backward: each activation is needed again, last first; pin it while "used". */
    for (int i = LAYERS - 1; i >= 0; i--) {
        CHECK_RC(mp_remat_pin(r, act[i]), MP_RESULT_OK);
        replay(r);
        CHECK(resident[act[i]]);
        bool res = false;
        CHECK_RC(mp_remat_is_resident(r, act[i], &res), MP_RESULT_OK);
        CHECK(res);
        CHECK_RC(mp_remat_unpin(r, act[i]), MP_RESULT_OK);
        replay(r);
        CHECK_RC(mp_remat_release(r, act[i]), MP_RESULT_OK);
        replay(r);
    }

    /* Errors are codes, the runtime is still usable after them. */
    uint32_t bad = 1000, t = 0;
    CHECK_RC(mp_remat_register(r, 1, 1, &bad, 1, 0, &t), MP_RESULT_INDEX_OUT_OF_RANGE);
    CHECK_RC(mp_remat_register(r, 1, 1, NULL, 1, 0, &t), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_remat_register(r, 1, 1, NULL, 0, 8, &t), MP_RESULT_INVALID_ARGUMENT);
    CHECK_RC(mp_remat_release(r, act[0]), MP_RESULT_INVALID_ARGUMENT); /* no reference left */
    CHECK_RC(mp_remat_unpin(r, w), MP_RESULT_INVALID_ARGUMENT);        /* not pinned by us */
    CHECK_RC(mp_remat_pin(NULL, 0), MP_RESULT_NULL_PARAMETER);

    /* make_room: nothing but the weight is resident now, so room for all but 64 bytes. */
    size_t n = 99;
    CHECK_RC(mp_remat_make_room(r, BUDGET - WEIGHT, &n), MP_RESULT_OK);
    replay(r);
    CHECK(memory == WEIGHT);
    CHECK_RC(mp_remat_make_room(r, BUDGET, &n), MP_RESULT_OUT_OF_MEMORY);

    mp_remat_counters st;
    CHECK_RC(mp_remat_stats(r, &st), MP_RESULT_OK);
    CHECK(st.evictions == evictions);
    CHECK(st.memory == memory);
    CHECK(st.peak <= BUDGET);
    CHECK(recomputes > 0);
    printf("%u layers, budget %" PRIu64 " bytes: %u evictions, %u recomputations, "
           "clock %" PRIu64 " (model %" PRIu64 ")\n",
           (unsigned)LAYERS, BUDGET, evictions, recomputes, st.clock, st.model_compute);
    mp_remat_free(r);
    mp_remat_free(NULL);
    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
