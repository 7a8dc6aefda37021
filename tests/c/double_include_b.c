/* Header hygiene, translation unit B: see double_include_a.c. */
#include "memplan.h"
#include "memplan.h"

#ifdef __cplusplus
extern "C" int memplan_double_include_b(void);
#else
int memplan_double_include_b(void);
#endif

int memplan_double_include_b(void) {
    mp_packer *p = NULL;
    size_t index = 0;
    uint64_t peak = 0;
    int ok = mp_packer_new(&p) == MP_RESULT_OK &&
             mp_packer_add_buffer(p, "b", 1, 0, 1, 16, 0, &index) == MP_RESULT_OK &&
             mp_packer_pack(p, NULL) == MP_RESULT_OK &&
             mp_packer_peak(p, &peak) == MP_RESULT_OK && peak == 16;
    mp_packer_free(p);
    return ok ? 0 : 1;
}
