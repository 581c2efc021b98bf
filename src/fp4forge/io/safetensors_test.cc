// The safetensors reader accepts what the format allows and rejects every kind of broken or lying
// file with an error naming the file and tensor; a seeded mutator checks that nothing crashes.
#include "fp4forge/io/safetensors.h"
#include "fp4forge/io/safetensors_writer.h"

#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"

namespace fp4forge {
namespace {

std::string Pack(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& bytes) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("fp4forge_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + ".safetensors"))
                                 .string();
    std::ofstream(path, std::ios::binary) << bytes;
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& p : paths_) std::filesystem::remove(p);
  }
  void ExpectInvalid(const std::string& header, const std::string& data, const std::string& fragment) {
    const std::string path = Write(Pack(header, data));
    try {
      SafetensorsFile file(path);
      ADD_FAILURE() << "accepted: " << header;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidData) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  std::vector<std::string> paths_;
  int counter_ = 0;
};

const std::string kValidHeader =
    R"({"__metadata__":{"format":"pt"},"b.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]},)"
    R"("a.scale":{"dtype":"F32","shape":[],"data_offsets":[16,20]},"z.empty":{"dtype":"U8","shape":[0],"data_offsets":[20,20]}})";

TEST_F(SafetensorsTest, ReadsTensorsShapesMetadataAndData) {
  std::string data(20, '\0');
  data[0] = '\x80';  // bf16 1.0 = 0x3F80, little-endian
  data[1] = '\x3F';
  const SafetensorsFile file(Write(Pack(kValidHeader, data)));
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const SafetensorsTensor& w = file.tensors()[1];
  EXPECT_EQ(w.name, "b.weight");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 4}));
  const ConstMatrixView m = w.AsMatrix();
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 4);
  EXPECT_EQ(m.dtype, DType::kBF16);
  EXPECT_EQ(w.data[0], 0x80);
  EXPECT_EQ(file.tensors()[0].NumElements(), 1);  // rank 0
  EXPECT_THROW(file.tensors()[2].AsMatrix(), Error);
}

TEST_F(SafetensorsTest, RejectsBrokenAndLyingFiles) {
  const std::string d16(16, '\0');
  ExpectInvalid("{not json", "", "JSON");
  ExpectInvalid("[1,2]", "", "JSON object");
  ExpectInvalid(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0'), "'w': unknown dtype 'Q4'");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0'), "'w'");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,64]}})", d16, "outside");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", d16, "16 bytes of data; shape × F32 needs 20 bytes");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, '\0'), "contiguous");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d16, "contiguous");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d16, "trailing");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                d16, "twice");
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2]}})", "", "data_offsets");
  ExpectInvalid(R"({"__metadata__":{"k":1}})", "", "not a string");
  ExpectInvalid(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", std::string(2, '\0'), "is 12 bits, not a whole number of bytes");

  std::string huge_length = Pack("{}", "");
  huge_length[6] = 0x7F;  // header length far beyond the file
  const std::string path = Write(huge_length);
  EXPECT_THROW(SafetensorsFile{path}, Error);
  EXPECT_THROW(SafetensorsFile{Write("abc")}, Error);
  try {
    SafetensorsFile missing("/nonexistent/x.safetensors");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
}

TEST_F(SafetensorsTest, TensorsReadBackUnchangedAfterReleaseAndEvict) {
  // Three tensors of 3 pages each, not page-aligned, so that neighbours share edge pages: reading
  // ahead, unmapping and dropping from the page cache must never change what a tensor reads.
  constexpr int kBytes = 3 * 4096 + 100;
  std::mt19937 rng(7);
  std::string data(3 * kBytes, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  nlohmann::json header;
  for (int i = 0; i < 3; ++i) {
    header["t" + std::to_string(i)] = {{"dtype", "U8"}, {"shape", {kBytes}}, {"data_offsets", {i * kBytes, (i + 1) * kBytes}}};
  }
  const SafetensorsFile file(Write(Pack(header.dump(), data)));
  const std::vector<SafetensorsTensor>& t = file.tensors();
  ASSERT_EQ(t.size(), 3u);
  for (const SafetensorsTensor& tensor : t) file.ReadIntoCache(tensor);
  file.Release(t[0]);
  file.Evict(t[1]);
  file.Evict(t[2]);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t[i].data), kBytes), data.substr(i * kBytes, kBytes)) << i;
  }
}

// How many of the pages of [offset, offset + length) of `path` are in the page cache.
int CachedPages(const std::string& path, size_t offset, size_t length) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  const size_t size = std::filesystem::file_size(path);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t first = offset / page, last = (offset + length - 1) / page;
  std::vector<unsigned char> resident(size / page + 1);
  ::mincore(map, size, resident.data());
  ::munmap(map, size);
  int cached = 0;
  for (size_t p = first; p <= last; ++p) cached += resident[p] & 1;
  return cached;
}

TEST_F(SafetensorsTest, EvictDropsTheTensorFromThePageCacheAndNothingElse) {
  // An empty tensor first: posix_fadvise reads a length of 0 as "to the end of the file". 8 MiB,
  // since the page cache may hold a file in folios of up to 2 MiB, and one that holds the
  // still-mapped header page stays.
  constexpr int kPages = 2048;
  const int64_t bytes = kPages * 4096;
  const std::string header = fmt::format(R"({{"a":{{"dtype":"U8","shape":[0],"data_offsets":[0,0]}},)"
                                         R"("b":{{"dtype":"U8","shape":[{0}],"data_offsets":[0,{0}]}}}})", bytes);
  const std::string path = Write(Pack(header, std::string(bytes, '\5')));
  struct statfs fs{};
  if (::statfs(path.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps its pages";
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_EQ(::fsync(fd), 0);  // dirty pages cannot be dropped
  ::close(fd);
  const SafetensorsFile file(path);
  const SafetensorsTensor& b = file.tensors()[1];
  const size_t offset = 8 + header.size();
  file.ReadIntoCache(b);
  ASSERT_GE(CachedPages(path, offset, bytes), kPages);
  file.Evict(file.tensors()[0]);
  EXPECT_GE(CachedPages(path, offset, bytes), kPages) << "evicting an empty tensor dropped its neighbour";
  file.Evict(b);
  EXPECT_LE(CachedPages(path, offset, bytes), kPages / 2) << "the tensor stayed in the page cache";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data), bytes), std::string(bytes, '\5'));
}

TEST_F(SafetensorsTest, SeededMutationsNeverCrash) {
  // A seeded mutator over a valid file: flipped bytes, truncations and extensions must each either
  // open (then every tensor lies inside the file) or throw Error. Run under ASan for full effect.
  const std::string valid = Pack(kValidHeader, std::string(20, '\1'));
  std::mt19937 rng(2026);
  int opened = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = valid;
    switch (rng() % 4) {
      case 0: bytes.resize(rng() % bytes.size()); break;
      case 1: bytes += std::string(rng() % 9, static_cast<char>(rng())); break;
      default:
        for (int k = 1 + rng() % 4; k > 0; --k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    const std::string path = Write(bytes);
    try {
      const SafetensorsFile file(path);
      for (const SafetensorsTensor& t : file.tensors()) {
        ASSERT_GE(t.num_bytes, 0);
        volatile uint8_t sink = t.num_bytes > 0 ? t.data[t.num_bytes - 1] : 0;  // touch the last byte
        (void)sink;
      }
      ++opened;
    } catch (const Error&) {
      ++rejected;
    }
    std::filesystem::remove(path);
    paths_.pop_back();
  }
  EXPECT_GT(opened, 0);
  EXPECT_GT(rejected, 1000);
}

TEST_F(SafetensorsTest, WriterOutputReadsBackAndRejectsMisuse) {
  const std::string path = Write("");
  const std::vector<uint8_t> packed = {1, 2, 3, 4, 5, 6, 7, 8}, scales = {0x7E, 0x38};
  const float scale2 = 0.5f;
  {
    SafetensorsWriter writer(path, {{"a.weight", "U8", {2, 4}}, {"a.weight_scale", "F8_E4M3", {2, 1}},
                                    {"a.weight_scale_2", "F32", {}}});
    EXPECT_THROW(writer.Write("a.weight_scale", scales), Error);  // out of order
    writer.Write("a.weight", packed);
    EXPECT_THROW(writer.Write("a.weight_scale", packed), Error);  // wrong size
    writer.Write("a.weight_scale", scales);
    writer.Write("a.weight_scale_2", std::span(reinterpret_cast<const uint8_t*>(&scale2), 4));
    writer.Finish();
  }
  const SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.tensors()[0].name, "a.weight");
  EXPECT_EQ(std::vector<uint8_t>(file.tensors()[0].data, file.tensors()[0].data + 8), packed);
  EXPECT_EQ(file.tensors()[2].shape.size(), 0u);
  std::ifstream in(path, std::ios::binary);
  uint8_t length[8];
  in.read(reinterpret_cast<char*>(length), 8);
  EXPECT_EQ(length[0] % 8, 0);  // header padded to 8 bytes, as the reference writer does

  SafetensorsWriter unfinished(path, {{"x", "F32", {1}}});
  EXPECT_THROW(unfinished.Finish(), Error);
  EXPECT_THROW((SafetensorsWriter{"/nonexistent/dir/x.safetensors", {}}), Error);
}

}  // namespace
}  // namespace fp4forge
