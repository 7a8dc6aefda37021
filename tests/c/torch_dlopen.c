/*
 * The PyTorch pluggable-allocator entry points, reached the way PyTorch reaches them:
 * dlopen() the shared library, dlsym() the two functions by name, call them through
 * pointers of the signatures torch.cuda.memory.CUDAPluggableAllocator uses.
 *
 * Usage: torch_dlopen /path/to/libmemplan.so
 * Run by tests/tests/c_api.rs with MEMPLAN_BACKEND=host MEMPLAN_CAPACITY=67108864.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

typedef void *(*malloc_fn)(ssize_t size, int device, void *stream);
typedef void (*free_fn)(void *ptr, ssize_t size, int device, void *stream);
typedef uint32_t (*last_error_fn)(char *buf, size_t len, size_t *out_n);

static int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s libmemplan.so\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    malloc_fn mp_malloc;
    free_fn mp_free;
    last_error_fn mp_last_error;
    /* POSIX: converting dlsym's void* to a function pointer goes through memcpy in ISO C. */
    void *sym = dlsym(lib, "mp_torch_malloc");
    CHECK(sym != NULL);
    memcpy(&mp_malloc, &sym, sizeof sym);
    sym = dlsym(lib, "mp_torch_free");
    CHECK(sym != NULL);
    memcpy(&mp_free, &sym, sizeof sym);
    sym = dlsym(lib, "mp_torch_last_error");
    CHECK(sym != NULL);
    memcpy(&mp_last_error, &sym, sizeof sym);
    if (failures) {
        return 1;
    }

    void *stream_a = (void *)0x10; /* any value names a stream on the host backend */
    void *stream_b = (void *)0x20;

    /* Size 0 is accepted and gives a distinct non-NULL pointer. */
    void *z = mp_malloc(0, 0, stream_a);
    void *a = mp_malloc(1000, 0, stream_a);
    void *b = mp_malloc(3 << 20, 0, stream_b);
    CHECK(z != NULL && a != NULL && b != NULL);
    CHECK(z != a && a != b && z != b);
    CHECK((uintptr_t)a % 512 == 0 && (uintptr_t)b % 512 == 0);

    /* Errors are NULL plus a message, never a crash. */
    CHECK(mp_malloc(-1, 0, stream_a) == NULL);
    char msg[256];
    size_t n = 0;
    CHECK(mp_last_error(msg, sizeof msg, &n) == 0);
    CHECK(n > 0 && strstr(msg, "negative") != NULL);
    CHECK(mp_malloc((ssize_t)1 << 40, 0, stream_a) == NULL); /* over MEMPLAN_CAPACITY */
    CHECK(mp_malloc(16, 1, stream_a) == NULL);               /* another device */
    mp_free(NULL, 0, 0, stream_a);                           /* no-op */
    mp_free((void *)0x1234, 8, 0, stream_a);                 /* unknown: ignored, reported */
    CHECK(mp_last_error(msg, sizeof msg, &n) == 0 && strstr(msg, "mp_torch_free") != NULL);

    mp_free(a, 1000, 0, stream_a);
    mp_free(b, 3 << 20, 0, stream_b);
    mp_free(z, 0, 0, stream_a);

    /* Freed memory is served again. */
    void *c = mp_malloc(1000, 0, stream_a);
    CHECK(c != NULL);
    mp_free(c, 1000, 0, stream_a);

    dlclose(lib);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("torch_dlopen: all checks passed\n");
    return 0;
}
