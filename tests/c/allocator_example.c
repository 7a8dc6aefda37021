/*
 * Drives memplan's online allocator through the C API: an allocator over a capacity of four
 * 4 KiB pages, a few blocks allocated and deallocated (checked for alignment and overlap in
 * C), exact stats, trim, an out-of-memory request and an unknown address. Built and run by
 * tests/tests/c_api.rs (C11, -Wall -Wextra -Wpedantic -Werror, and once more with
 * ASan+UBSan). Exit status 0 means every check passed.
 */
#include "memplan.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"

#define PAGE 4096u
#define N_BLOCKS 4

/* Bytes a request takes: rounded up to 512, and 512 for 0. */
static uint64_t rounded(uint64_t size) {
    return size == 0 ? 512 : (size + 511) / 512 * 512;
}

static void check_stats(const mp_allocator *a, uint64_t allocated, uint64_t peak_allocated,
                        uint64_t reserved, uint64_t peak_reserved, uint64_t reservations) {
    mp_alloc_stats s;
    memset(&s, 0, sizeof s);
    CHECK_RC(mp_allocator_stats(a, &s), MP_RESULT_OK);
    CHECK(s.allocated == allocated);
    CHECK(s.peak_allocated == peak_allocated);
    CHECK(s.reserved == reserved);
    CHECK(s.peak_reserved == peak_reserved);
    CHECK(s.segments == (reserved > 0 ? 1u : 0u));
    CHECK(s.reservations == reservations);
}

int main(void) {
    mp_allocator *a = NULL;
    mp_allocator_options opts;
    static const uint64_t sizes[N_BLOCKS] = {1000, 0, 5000, 512};
    uint64_t addrs[N_BLOCKS];
    uint64_t total = 0, released = 0, addr = 0;
    size_t i, j;

    /* Bad options: unknown flag bits, a page size that is not a power of two >= 512. */
    memset(&opts, 0, sizeof opts);
    opts.flags = 1u << 5;
    CHECK_RC(mp_allocator_new(&opts, &a), MP_RESULT_INVALID_ARGUMENT);
    opts.flags = MP_ALLOCATOR_PAGE_SIZE;
    opts.page_size = 256;
    CHECK_RC(mp_allocator_new(&opts, &a), MP_RESULT_INVALID_ARGUMENT);
    opts.page_size = 3000;
    CHECK_RC(mp_allocator_new(&opts, &a), MP_RESULT_INVALID_ARGUMENT);
    CHECK(a == NULL);
    CHECK_RC(mp_allocator_new(NULL, NULL), MP_RESULT_NULL_PARAMETER);

    opts.flags = MP_ALLOCATOR_CAPACITY | MP_ALLOCATOR_PAGE_SIZE;
    opts.capacity = 4 * PAGE;
    opts.page_size = PAGE;
    CHECK_RC(mp_allocator_new(&opts, &a), MP_RESULT_OK);
    if (a == NULL) {
        fprintf(stderr, "no allocator\n");
        return 1;
    }
    check_stats(a, 0, 0, 0, 0, 0);

    for (i = 0; i < N_BLOCKS; i++) {
        addrs[i] = 0;
        CHECK_RC(mp_allocator_alloc(a, sizes[i], (uint32_t)i, &addrs[i]), MP_RESULT_OK);
        CHECK(addrs[i] % 512 == 0);
        total += sizes[i];
    }
    /* No two live blocks overlap. */
    for (i = 0; i < N_BLOCKS; i++) {
        for (j = i + 1; j < N_BLOCKS; j++) {
            CHECK(addrs[i] + rounded(sizes[i]) <= addrs[j] ||
                  addrs[j] + rounded(sizes[j]) <= addrs[i]);
        }
    }
    /* 1024 + 512 + 5120 + 512 = 7168 bytes: two pages, mapped in two growths. */
    check_stats(a, total, total, 2 * PAGE, 2 * PAGE, 2);

    /* Out of memory: 3 more pages would exceed the capacity of 4. Nothing changes. */
    addr = 12345;
    CHECK_RC(mp_allocator_alloc(a, 3 * PAGE, 0, &addr), MP_RESULT_OUT_OF_MEMORY);
    CHECK(addr == 12345);
    check_stats(a, total, total, 2 * PAGE, 2 * PAGE, 2);

    /* Unknown addresses: inside a block, never allocated; then a double dealloc. */
    CHECK_RC(mp_allocator_dealloc(a, addrs[2] + 512), MP_RESULT_UNKNOWN_ADDRESS);
    CHECK_RC(mp_allocator_dealloc(a, 1), MP_RESULT_UNKNOWN_ADDRESS);
    CHECK_RC(mp_allocator_dealloc(a, addrs[0]), MP_RESULT_OK);
    CHECK_RC(mp_allocator_dealloc(a, addrs[0]), MP_RESULT_UNKNOWN_ADDRESS);
    check_stats(a, total - sizes[0], total, 2 * PAGE, 2 * PAGE, 2);

    /* Deallocate the rest; everything coalesces and trim unmaps every page. */
    for (i = 1; i < N_BLOCKS; i++) {
        CHECK_RC(mp_allocator_dealloc(a, addrs[i]), MP_RESULT_OK);
    }
    CHECK_RC(mp_allocator_trim(a, &released), MP_RESULT_OK);
    CHECK(released == 2 * PAGE);
    check_stats(a, 0, total, 0, 2 * PAGE, 2);
    CHECK_RC(mp_allocator_trim(a, NULL), MP_RESULT_NULL_PARAMETER);
    CHECK_RC(mp_allocator_alloc(NULL, 1, 0, &addr), MP_RESULT_NULL_PARAMETER);

    mp_allocator_free(a);
    mp_allocator_free(NULL);

    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("allocator: %" PRIu64 " bytes in %d blocks, all checks passed\n", total, N_BLOCKS);
    return 0;
}
