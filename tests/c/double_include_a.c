/*
 * Header hygiene, translation unit A (after wasmtime's tests/double-include-*.cc): the header
 * is included twice here and once more in double_include_b.c; the include guard must make the
 * repeats harmless and the two units must link (no definitions, only declarations, in the
 * header). Also compiled as C++ by tests/tests/c_api.rs.
 */
#include "memplan.h"
#include "memplan.h"

#include <stdio.h>
#include <string.h>

/* Defined in double_include_b.c. */
#ifdef __cplusplus
extern "C" int memplan_double_include_b(void);
#else
int memplan_double_include_b(void);
#endif

int main(void) {
    if (memplan_double_include_b() != 0) {
        return 1;
    }
    if (strlen(mp_version()) == 0) {
        return 1;
    }
    printf("double include: ok\n");
    return 0;
}
