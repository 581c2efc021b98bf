# Every dependency comes from a Debian package; scripts/setup.sh installs them.
# Why each one is here: docs/decisions/.
find_package(Threads REQUIRED)
find_package(hwy REQUIRED)                 # libhwy-dev: portable SIMD with runtime dispatch
find_package(fmt REQUIRED)                 # libfmt-dev: formatting of messages and tables
find_package(nlohmann_json 3.10 REQUIRED)  # nlohmann-json3-dev: JSON output (and later checkpoint headers)
find_package(CLI11 REQUIRED)               # libcli11-dev: the command line
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)  # libpcre2-dev: every regex (base/regex.h)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)  # libsentencepiece-dev: tokenizer.model
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)  # libicu-dev: tokenizers' NFC/NFKC normalizers
if(FP4FORGE_BUILD_TESTS)
  find_package(GTest REQUIRED)             # libgtest-dev
  find_package(Python3 COMPONENTS Interpreter)
endif()
if(FP4FORGE_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)         # libbenchmark-dev
endif()
