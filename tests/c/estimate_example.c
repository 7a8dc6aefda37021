/*
 * Drives memplan's model-state planning through the C API: the memory estimator (the ZeRO
 * paper's 7.5B-parameter, 64-GPU figures and an offload setup), a ZeRO sharding layout (every
 * parameter byte owned exactly once, equal shards) and a chunk placement plan (moves replayed
 * in C: each move leaves where the chunk is, the GPU never holds more than its budget). Built
 * and run by tests/tests/c_api.rs (C11, -Wall -Wextra -Wpedantic -Werror, and with
 * ASan+UBSan). Exit status 0 means every check passed.
 */
#include "memplan.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

static void zero_paper(void) {
    /* 7.5B parameters on 64 data-parallel GPUs: 120, 31.4, 16.6, 1.9 GB for stages 0-3. */
    const char *want[4] = {"120.0", "31.4", "16.6", "1.9"};
    for (uint32_t stage = 0; stage < 4; stage++) {
        mp_estimate_input in;
        memset(&in, 0, sizeof in);
        in.params = 7500000000u;
        in.layers = 1;
        in.hidden = 1;
        in.heads = 1;
        in.seq = 1;
        in.micro_batch = 1;
        in.dp = 64;
        in.tp = 1;
        in.pp = 1;
        in.largest_layer = 0;
        in.gpus_per_host = 8;
        in.zero = stage;
        in.recompute = MP_RECOMPUTE_FULL;
        mp_estimate e;
        CHECK_RC(mp_estimate_memory(&in, &e), MP_RESULT_OK);
        /* hidden 1: the gathered layer (stage 3) is 12 parameters, negligible. */
        uint64_t states = e.gpu.params + e.gpu.grads + e.gpu.optimizer;
        char got[32];
        snprintf(got, sizeof got, "%.1f", (double)states / 1e9);
        printf("ZeRO-%" PRIu32 ": %s GB per GPU\n", stage, got);
        CHECK(strcmp(got, want[stage]) == 0);
    }
}

static void offload(void) {
    mp_estimate_input in;
    memset(&in, 0, sizeof in);
    in.params = 7000000000u;
    in.layers = 32;
    in.hidden = 4096;
    in.heads = 32;
    in.seq = 4096;
    in.micro_batch = 1;
    in.dp = 8;
    in.tp = 2;
    in.pp = 2;
    in.gpus_per_host = 8;
    in.zero = 3;
    in.offload = MP_OFFLOAD_CPU;
    in.recompute = MP_RECOMPUTE_SELECTIVE;
    in.sequence_parallel = 1;
    mp_estimate e;
    CHECK_RC(mp_estimate_memory(&in, &e), MP_RESULT_OK);
    CHECK(e.gpu.optimizer == 0);
    CHECK(e.gpu.activations == (uint64_t)32 * 34 * 4096 * 4096 / 2);
    CHECK(e.host.optimizer == (uint64_t)12 * 1750000000u);
    printf("7B, dp 8 tp 2 pp 2, ZeRO-3 + CPU offload: %.2f GiB per GPU, %.2f GiB per host\n",
           (double)e.gpu.total / (1 << 30), (double)e.host.total / (1 << 30));
    in.zero = 2; /* parameter offload needs stage 3 */
    mp_estimate before = e;
    CHECK_RC(mp_estimate_memory(&in, &e), MP_RESULT_INVALID_ARGUMENT);
    CHECK(memcmp(&before, &e, sizeof e) == 0);
    CHECK_RC(mp_estimate_memory(NULL, &e), MP_RESULT_NULL_PARAMETER);
}

static void sharding(void) {
    const uint64_t numels[5] = {1000, 3, 77, 4096, 5};
    mp_shard_options o = {8, 4, 8, 16}; /* 8 ranks, shard within groups of 4 */
    mp_shard_layout *layout = NULL;
    CHECK_RC(mp_shard_layout_new(numels, 5, &o, &layout), MP_RESULT_OK);
    mp_shard_info info;
    CHECK_RC(mp_shard_layout_info(layout, &info), MP_RESULT_OK);
    CHECK(info.shard_numel * 4 == info.padded_numel);
    CHECK(info.shard_numel % 16 == 0);
    const uint64_t elem = 2;
    uint64_t covered = 0;
    for (size_t p = 0; p < 5; p++) {
        size_t n = 0;
        CHECK_RC(mp_shard_layout_owners(layout, p, elem, NULL, 0, &n), MP_RESULT_OK);
        mp_shard_piece *pieces = calloc(n, sizeof *pieces);
        CHECK(pieces != NULL);
        size_t n2 = 0;
        CHECK_RC(mp_shard_layout_owners(layout, p, elem, pieces, n, &n2), MP_RESULT_OK);
        CHECK(n2 == n);
        uint64_t at = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK(pieces[i].param_begin == at);
            CHECK(pieces[i].shard < 4);
            CHECK(pieces[i].shard_offset + (pieces[i].param_end - pieces[i].param_begin) <=
                  info.shard_numel * elem);
            at = pieces[i].param_end;
        }
        CHECK(at == numels[p] * elem);
        covered += at;
        free(pieces);
    }
    CHECK(covered == (1000 + 3 + 77 + 4096 + 5) * elem);
    uint32_t s = 0;
    CHECK_RC(mp_shard_layout_shard_of(layout, 6, &s), MP_RESULT_OK);
    CHECK(s == 2);
    CHECK_RC(mp_shard_layout_shard_of(layout, 8, &s), MP_RESULT_INDEX_OUT_OF_RANGE);
    printf("shards: %" PRIu64 " elements each, %" PRIu64 " of %" PRIu64 " padded\n",
           info.shard_numel, info.padded_numel - info.flat_numel, info.padded_numel);
    mp_shard_layout_free(layout);
    mp_shard_layout_free(NULL);
    o.group = 3;
    CHECK_RC(mp_shard_layout_new(numels, 5, &o, &layout), MP_RESULT_INVALID_ARGUMENT);
}

static void chunks(void) {
    /* Eight layers of two 1000-element fp16 tensors: forward at moments 0..7, backward
     * 8..15. */
    mp_chunk_tensor t[16];
    for (uint64_t i = 0; i < 16; i++) {
        t[i].numel = 1000;
        t[i].dtype_bytes = 2;
        t[i].first_use = i / 2;
        t[i].last_use = 15 - i / 2;
    }
    mp_chunk_options o;
    memset(&o, 0, sizeof o);
    o.chunk_numel = 2000;
    o.gpu_bytes = 40000;
    o.host_bytes = 1000000;
    o.policy = MP_POLICY_BELADY;
    o.prefetch = 1;
    o.iterations = 2;
    uint64_t moved[2] = {0, 0};
    for (uint32_t policy = 0; policy < 2; policy++) {
        o.policy = policy == 0 ? MP_POLICY_BELADY : MP_POLICY_LRU;
        mp_chunk_placement *plan = NULL;
        CHECK_RC(mp_chunk_placement_new(t, 16, &o, &plan), MP_RESULT_OK);
        mp_chunk_summary s;
        CHECK_RC(mp_chunk_placement_summary(plan, &s), MP_RESULT_OK);
        CHECK(s.positions == 8);
        /* Replay the moves: each leaves where the chunk is; the GPU never exceeds its budget. */
        int at[32];
        uint64_t size[32];
        for (int c = 0; c < 32; c++) {
            at[c] = MP_TIER_HOST;
            size[c] = (c % 4 == 0) ? 4000 : 8000;
        }
        uint64_t gpu = 0;
        for (size_t i = 0; i < s.moves; i++) {
            mp_chunk_move m;
            CHECK_RC(mp_chunk_placement_move(plan, i, &m), MP_RESULT_OK);
            CHECK(m.chunk < 32);
            if (m.chunk >= 32) {
                continue;
            }
            CHECK(at[m.chunk] == (int)m.from);
            CHECK(m.bytes == size[m.chunk]);
            if (m.from == MP_TIER_DEVICE) {
                gpu -= m.bytes;
            }
            if (m.to == MP_TIER_DEVICE) {
                gpu += m.bytes;
            }
            CHECK(gpu <= o.gpu_bytes);
            at[m.chunk] = (int)m.to;
            moved[policy] += m.bytes;
        }
        mp_chunk_move m;
        CHECK_RC(mp_chunk_placement_move(plan, s.moves, &m), MP_RESULT_INDEX_OUT_OF_RANGE);
        printf("%s: %" PRIu64 " moves, %" PRIu64 " bytes, %" PRIu64 " of %" PRIu64
               " fetched bytes prefetched\n",
               policy == 0 ? "belady" : "lru", s.moves, moved[policy], s.prefetched,
               s.fetched);
        mp_chunk_placement_free(plan);
    }
    CHECK(moved[0] <= moved[1]);
    mp_chunk_placement *plan = NULL;
    o.gpu_bytes = 20000; /* the optimizer moment needs 4000 + 3 * 8000 bytes */
    CHECK_RC(mp_chunk_placement_new(t, 16, &o, &plan), MP_RESULT_CAPACITY_EXCEEDED);
    o.gpu_bytes = 40000;
    o.chunk_numel = 999; /* smaller than a tensor */
    CHECK_RC(mp_chunk_placement_new(t, 16, &o, &plan), MP_RESULT_INVALID_ARGUMENT);
    mp_chunk_placement_free(NULL);
}

int main(void) {
    zero_paper();
    offload();
    sharding();
    chunks();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
