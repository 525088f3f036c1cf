// Internal pieces of pressline_assets shared by the store, the fetchers and the tests' view.
#pragma once

#include <pressline/assets/assets.hpp>

#include <openssl/evp.h>

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace pressline::assets::detail {

// Incremental sha256 (OpenSSL EVP). Not copyable.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  std::string hex();  // finishes the digest

 private:
  EVP_MD_CTX* ctx_;
};

struct Fetched {
  std::int64_t bytes = 0;
  std::string sha256;  // lower-case hex of what was written
};

// The URI with user info, query and fragment removed (presigned URLs carry secrets there).
std::string redact_uri(const std::string& uri);

// Cheap checks that need no I/O: scheme, host allow-list, file:// path shape and root.
std::variant<std::monostate, Problem> check_uri(const std::string& uri, const FetchPolicy& policy);

// Writes the content of uri into fd (an empty file open for writing), hashing as it goes.
// Enforces every FetchPolicy rule. Blocking.
std::variant<Fetched, Problem> fetch_to_fd(const std::string& uri, const FetchPolicy& policy,
                                           int fd);

// True for addresses a default policy refuses (loopback, private, link-local, ULA...).
bool is_private_address(const ::sockaddr* addr);

}  // namespace pressline::assets::detail
