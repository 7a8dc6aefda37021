/* Header hygiene, translation unit B: see double_include_a.c. */
#include "memplan.h"
#include "memplan.h"

#ifdef __cplusplus
extern "C" int memplan_double_include_b(void);
#else
int memplan_double_include_b(void);
#endif

int memplan_double_include_b(void) {
    mp_planner *p = NULL;
    size_t index = 0;
    uint64_t peak = 0;
    int ok = mp_planner_new(&p) == MP_RESULT_OK &&
             mp_planner_add_buffer(p, "b", 1, 0, 1, 16, 0, &index) == MP_RESULT_OK &&
             mp_planner_solve(p, NULL) == MP_RESULT_OK &&
             mp_planner_peak(p, &peak) == MP_RESULT_OK && peak == 16;
    mp_planner_free(p);
    return ok ? 0 : 1;
}
