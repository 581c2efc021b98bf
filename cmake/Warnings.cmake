# Warnings high and clean; floating-point contraction off so that the scalar reference and every
# SIMD path round the same operations the same way (an fma would round once where we round twice).
add_library(fp4forge_options INTERFACE)
target_compile_options(fp4forge_options INTERFACE "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-ffp-contract=off>")
