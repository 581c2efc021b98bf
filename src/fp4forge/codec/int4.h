// INT4 nibbles. Signed codes are two's complement in [-8, 7]; unsigned codes are [0, 15].
// Packing order is the canonical one of e2m1.h (element 2k in the low nibble).
#pragma once

#include <cstdint>

namespace fp4forge {

constexpr uint8_t EncodeInt4(int32_t v) { return static_cast<uint8_t>(v & 0xF); }
constexpr int32_t DecodeInt4(uint8_t nibble) { return (nibble & 0x8) ? (nibble & 0xF) - 16 : (nibble & 0xF); }

}  // namespace fp4forge
