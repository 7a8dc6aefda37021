// C++17 variant of packer_example.c: the header must work from C++ (extern "C", the enum with
// an underlying type), and an RAII wrapper is the natural way to own a packer there.
// Built and run by tests/tests/c_api.rs with -std=c++17 -Wall -Wextra -Wpedantic -Werror.
#include "memplan.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

static_assert(std::is_same_v<std::underlying_type_t<mp_result>, uint32_t>);
static_assert(MP_RESULT_OK == 0 && MP_RESULT_CAPACITY_EXCEEDED == 10 && MP_RESULT_POISONED == 13);
static_assert(sizeof(mp_pack_options) == 32);

namespace {

int failures = 0;

void check(bool ok, const char *what, int line) {
    if (!ok) {
        std::fprintf(stderr, "packer_example.cpp:%d: check failed: %s\n", line, what);
        ++failures;
    }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

std::string message(uint32_t code) {
    size_t n = 0;
    if (mp_result_message(code, nullptr, 0, &n) != MP_RESULT_OK) return "?";
    std::string s(n + 1, '\0');
    if (mp_result_message(code, s.data(), s.size(), &n) != MP_RESULT_OK) return "?";
    s.resize(n);
    return s;
}

struct PackerDeleter {
    void operator()(mp_packer *p) const noexcept { mp_packer_free(p); }
};
using Packer = std::unique_ptr<mp_packer, PackerDeleter>;

Packer make_packer() {
    mp_packer *raw = nullptr;
    CHECK(mp_packer_new(&raw) == MP_RESULT_OK);
    return Packer(raw);
}

struct Buffer {
    std::string_view id;
    uint64_t lower, upper, size;
};

}  // namespace

int main() {
    const std::vector<Buffer> input = {
        {"b1", 0, 3, 4}, {"b2", 3, 9, 4}, {"b3", 0, 9, 4}, {"b4", 9, 21, 4}, {"b5", 0, 21, 4},
    };
    Packer p = make_packer();
    for (size_t i = 0; i < input.size(); ++i) {
        const Buffer &b = input[i];
        size_t index = 0;
        CHECK(mp_packer_add_buffer(p.get(), b.id.data(), b.id.size(), b.lower, b.upper, b.size, 0,
                                    &index) == MP_RESULT_OK);
        CHECK(index == i);
    }
    mp_pack_options options{};
    options.flags = MP_PACK_CAPACITY;
    options.capacity = 8;
    CHECK(mp_packer_pack(p.get(), &options) == MP_RESULT_CAPACITY_EXCEEDED);
    uint64_t best = 0;
    CHECK(mp_packer_best_peak(p.get(), &best) == MP_RESULT_OK && best == 12);

    CHECK(mp_packer_pack(p.get(), nullptr) == MP_RESULT_OK);
    uint64_t peak = 0;
    bool optimal = false;
    CHECK(mp_packer_peak(p.get(), &peak) == MP_RESULT_OK && peak == 12);
    CHECK(mp_packer_is_optimal(p.get(), &optimal) == MP_RESULT_OK && optimal);
    std::vector<uint64_t> offsets(input.size());
    for (size_t i = 0; i < input.size(); ++i) {
        CHECK(mp_packer_offset(p.get(), i, &offsets[i]) == MP_RESULT_OK);
        CHECK(offsets[i] + input[i].size <= peak);
    }
    for (size_t i = 0; i < input.size(); ++i) {
        for (size_t j = i + 1; j < input.size(); ++j) {
            const Buffer &a = input[i], &b = input[j];
            bool live_together = a.lower < b.upper && b.lower < a.upper;
            bool share = offsets[i] < offsets[j] + b.size && offsets[j] < offsets[i] + a.size;
            CHECK(!(live_together && share));
        }
    }

    size_t index = 0;
    CHECK(mp_packer_add_buffer(p.get(), "b1", 2, 0, 1, 1, 0, &index) == MP_RESULT_DUPLICATE_ID);
    CHECK(mp_packer_add_buffer(nullptr, "x", 1, 0, 1, 1, 0, &index) == MP_RESULT_NULL_PARAMETER);
    CHECK(message(MP_RESULT_DUPLICATE_ID) == "a buffer id was already added");
    CHECK(std::string(mp_version()) == std::to_string(MP_VERSION_MAJOR) + "." +
                                           std::to_string(MP_VERSION_MINOR) + "." +
                                           std::to_string(MP_VERSION_PATCH));

    if (failures != 0) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("packer_example.cpp: all checks passed\n");
    return 0;
}
