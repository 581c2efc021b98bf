// Opening the files of a checkpoint as untrusted input: every path must name a regular file (a
// symbolic link is followed, wherever it points, as Hugging Face's cache links snapshots to blobs),
// and anything else — a directory, a FIFO (which would block a read forever), a device, a link
// loop, a missing file — is an Error naming the path and what it is, never an exception from the
// standard library or a hang.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace fp4forge {

// Whether path names anything at all (a dangling or looping link counts: opening it fails clearly).
bool PathExists(const std::filesystem::path& path);

// Fails unless path (after links) is a regular file; `tag` prefixes the message, e.g. "[checkpoint]".
void RequireRegularFile(const std::filesystem::path& path, std::string_view tag);

// A regular file's whole contents.
std::string ReadRegularFile(const std::filesystem::path& path, std::string_view tag);

// The O_RDONLY descriptor of a regular file, opened without blocking on a FIFO and checked after
// opening (so a file swapped for something else in between is caught); the caller closes it.
int OpenRegularFile(const std::filesystem::path& path, std::string_view tag);

}  // namespace fp4forge
