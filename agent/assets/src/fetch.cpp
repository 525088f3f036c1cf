// Fetching artwork bytes: https:// (libcurl, address and host checks) and file:// (inside a root).
#include "internal.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace pressline::assets::detail {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Problem problem(const char* reason, std::string message) { return Problem{reason, std::move(message)}; }

std::string scheme_of(const std::string& uri) {
  auto p = uri.find("://");
  if (p == std::string::npos || p == 0) return {};
  return lower(uri.substr(0, p));
}

// ---- URL parts through curl's URL API -------------------------------------------------------

struct UrlParts {
  std::string scheme, host, port;
};

std::string url_get(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* s = nullptr;
  if (curl_url_get(u, part, &s, flags) != CURLUE_OK || s == nullptr) return {};
  std::string out = s;
  curl_free(s);
  return out;
}

std::unique_ptr<CURLU, void (*)(CURLU*)> parse_url(const std::string& uri) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (u && curl_url_set(u.get(), CURLUPART_URL, uri.c_str(), 0) != CURLUE_OK) u.reset();
  return u;
}

bool url_parts(const std::string& uri, UrlParts& out) {
  auto u = parse_url(uri);
  if (!u) return false;
  out.scheme = lower(url_get(u.get(), CURLUPART_SCHEME));
  out.host = lower(url_get(u.get(), CURLUPART_HOST));
  out.port = url_get(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!out.host.empty() && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  return !out.host.empty();
}

bool host_allowed(const std::string& host, const std::vector<std::string>& allowed) {
  for (const auto& a0 : allowed) {
    std::string a = lower(a0);
    if (a.size() > 2 && a.compare(0, 2, "*.") == 0) {
      std::string_view suffix(a.data() + 1, a.size() - 1);  // ".example.com"
      if (host.size() > suffix.size() &&
          std::string_view(host).substr(host.size() - suffix.size()) == suffix)
        return true;
    } else if (host == a) {
      return true;
    }
  }
  return false;
}

// ---- file:// ------------------------------------------------------------------------------------

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// file:///abs/path or file://localhost/abs/path -> decoded absolute path; empty on error.
std::string file_uri_path(const std::string& uri) {
  std::string rest = uri.substr(std::string("file://").size());
  if (lower(rest.substr(0, 9)) == "localhost") rest = rest.substr(9);
  if (rest.empty() || rest.front() != '/') return {};
  if (rest.find_first_of("?#") != std::string::npos) return {};
  std::string out;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%') {
      if (i + 2 >= rest.size()) return {};
      int h = hexval(rest[i + 1]), l = hexval(rest[i + 2]);
      if (h < 0 || l < 0 || (h == 0 && l == 0)) return {};
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else {
      out.push_back(rest[i]);
    }
  }
  return out;
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) {
      std::string s = path.substr(i, j - i);
      if (s != ".") out.push_back(s);
    }
    i = j + 1;
  }
  return out;
}

// Path segments of `path` below `root`, or nullopt if path is not strictly inside root.
std::optional<std::vector<std::string>> below(const std::vector<std::string>& path,
                                              const std::vector<std::string>& root) {
  if (path.size() <= root.size()) return std::nullopt;
  if (!std::equal(root.begin(), root.end(), path.begin())) return std::nullopt;
  return std::vector<std::string>(path.begin() + static_cast<std::ptrdiff_t>(root.size()),
                                  path.end());
}

std::string real_path(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return {};
  std::string out = r;
  std::free(r);
  return out;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Resolves the segments below the root for a file:// URI (lexical checks only).
std::variant<std::vector<std::string>, Problem> file_rel(const std::string& uri,
                                                         const FetchPolicy& policy,
                                                         std::string* root_real_out) {
  const std::string shown = redact_uri(uri);
  if (policy.file_root.empty())
    return problem(reason::uri_not_allowed, "file:// URIs are not allowed (no file_root): " + shown);
  std::string path = file_uri_path(uri);
  if (path.empty()) return problem(reason::path_not_allowed, "malformed file:// URI: " + shown);
  auto segs = segments(path);
  if (std::find(segs.begin(), segs.end(), "..") != segs.end())
    return problem(reason::path_not_allowed, "'..' in file:// path: " + shown);
  std::string root_real = real_path(policy.file_root.string());
  if (root_real.empty())
    return problem(reason::path_not_allowed,
                   "file_root " + policy.file_root.string() + " is not accessible, for " + shown);
  auto rel = below(segs, segments(policy.file_root.lexically_normal().string()));
  if (!rel) rel = below(segs, segments(root_real));
  if (!rel)
    return problem(reason::path_not_allowed, "file:// path outside file_root " +
                                                 policy.file_root.string() + ": " + shown);
  if (root_real_out) *root_real_out = root_real;
  return *rel;
}

std::variant<Fetched, Problem> fetch_file(const std::string& uri, const FetchPolicy& policy,
                                          int out_fd) {
  const std::string shown = redact_uri(uri);
  std::string root_real;
  auto relv = file_rel(uri, policy, &root_real);
  if (auto* p = std::get_if<Problem>(&relv)) return *p;
  const auto& rel = std::get<std::vector<std::string>>(relv);

  Fd dir(::open(root_real.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0)
    return problem(reason::path_not_allowed, "cannot open file_root " + root_real + ": " +
                                                 std::strerror(errno));
  Fd file;
  for (std::size_t i = 0; i < rel.size(); ++i) {
    const bool last = i + 1 == rel.size();
    int flags = O_CLOEXEC | O_NOFOLLOW | (last ? (O_RDONLY | O_NONBLOCK) : (O_RDONLY | O_DIRECTORY));
    int fd = ::openat(dir.fd, rel[i].c_str(), flags);
    if (fd < 0) {
      int err = errno;
      struct stat st {};
      if (::fstatat(dir.fd, rel[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return problem(reason::path_not_allowed, "symbolic link in file:// path (" + rel[i] +
                                                     "), not followed: " + shown);
      if (err == ENOENT || err == ENOTDIR)
        return problem(reason::not_found, "no such file: " + shown);
      return problem(reason::fetch_failed,
                     "cannot open " + shown + ": " + std::strerror(err));
    }
    if (last) {
      file.fd = fd;
    } else {
      ::close(dir.fd);
      dir.fd = fd;
    }
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return problem(reason::path_not_allowed, "not a regular file: " + shown);
  // Belt and braces: the file actually opened must be inside the root.
  char link[4096];
  std::string proc = "/proc/self/fd/" + std::to_string(file.fd);
  ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
  if (n > 0) {
    std::string opened(link, static_cast<std::size_t>(n));
    if (opened.compare(0, root_real.size() + 1, root_real + "/") != 0)
      return problem(reason::path_not_allowed, "file:// resolved outside file_root: " + shown);
  }
  if (st.st_size > policy.max_bytes)
    return problem(reason::too_large, shown + " is " + std::to_string(st.st_size) +
                                          " bytes, over max_bytes " +
                                          std::to_string(policy.max_bytes));
  int fl = ::fcntl(file.fd, F_GETFL);
  if (fl >= 0) ::fcntl(file.fd, F_SETFL, fl & ~O_NONBLOCK);

  Sha256 sha;
  Fetched out;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t r = ::read(file.fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return problem(reason::fetch_failed, "read " + shown + ": " + std::strerror(errno));
    if (r == 0) break;
    out.bytes += r;
    if (out.bytes > policy.max_bytes)
      return problem(reason::too_large, shown + " grew over max_bytes " +
                                            std::to_string(policy.max_bytes));
    sha.update(buf.data(), static_cast<std::size_t>(r));
    if (!write_all(out_fd, buf.data(), static_cast<std::size_t>(r)))
      return problem(reason::fetch_failed,
                     "writing cache temp file for " + shown + ": " + std::strerror(errno));
  }
  out.sha256 = sha.hex();
  return out;
}

// ---- https:// -----------------------------------------------------------------------------------

struct Transfer {
  const FetchPolicy* policy = nullptr;
  CURL* curl = nullptr;
  int fd = -1;
  Sha256* sha = nullptr;
  std::int64_t bytes = 0;
  bool too_large = false;
  bool write_failed = false;
  int write_errno = 0;
  std::string refused_address;  // set when the private-address rule refused a connection
  std::string ca_file;
};

std::string address_text(const ::sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

curl_socket_t open_socket(void* clientp, curlsocktype /*purpose*/, struct curl_sockaddr* addr) {
  auto* t = static_cast<Transfer*>(clientp);
  const auto* sa = reinterpret_cast<const ::sockaddr*>(&addr->addr);
  if (!t->policy->allow_private_addresses && is_private_address(sa)) {
    t->refused_address = address_text(sa);
    return CURL_SOCKET_BAD;
  }
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

size_t on_body(char* data, size_t size, size_t nmemb, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) return n;  // redirect bodies are dropped; errors never get here (FAILONERROR)
  if (t->bytes + static_cast<std::int64_t>(n) > t->policy->max_bytes) {
    t->too_large = true;
    return 0;
  }
  if (!write_all(t->fd, data, n)) {
    t->write_failed = true;
    t->write_errno = errno;
    return 0;
  }
  t->sha->update(data, n);
  t->bytes += static_cast<std::int64_t>(n);
  return n;
}

CURLcode on_ssl_ctx(CURL* /*curl*/, void* sslctx, void* parm) {
  auto* t = static_cast<Transfer*>(parm);
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(sslctx));
  if (store == nullptr || X509_STORE_load_file(store, t->ca_file.c_str()) != 1)
    return CURLE_SSL_CACERT_BADFILE;
  return CURLE_OK;
}

std::variant<Fetched, Problem> fetch_https(const std::string& uri, const FetchPolicy& policy,
                                           int fd) {
  const std::string shown = redact_uri(uri);
  UrlParts origin;
  if (!url_parts(uri, origin)) return problem(reason::uri_not_allowed, "malformed URI: " + shown);

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return problem(reason::fetch_failed, "curl_easy_init failed for " + shown);
  Sha256 sha;
  Transfer t;
  t.policy = &policy;
  t.curl = curl.get();
  t.fd = fd;
  t.sha = &sha;
  t.ca_file = policy.ca_file.string();
  const char* protocols = policy.allow_http ? "http,https" : "https";

  std::string url = uri;
  for (int hop = 0;; ++hop) {
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are checked here, see below
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // the address check must see the real peer
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(policy.max_bytes));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(policy.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(policy.total_timeout.count()));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(policy.low_speed_bytes_per_s));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(policy.low_speed_time.count()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pressline-agent");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!t.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
      curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, &t);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);

    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      if (!t.refused_address.empty() && rc == CURLE_COULDNT_CONNECT)
        return problem(reason::uri_not_allowed, shown + " resolves to private address " +
                                                    t.refused_address +
                                                    " (allow_private_addresses is off)");
      if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return problem(reason::too_large,
                       shown + " is over max_bytes " + std::to_string(policy.max_bytes));
      if (t.write_failed)
        return problem(reason::fetch_failed, "writing cache temp file for " + shown + ": " +
                                                 std::strerror(t.write_errno));
      if (rc == CURLE_HTTP_RETURNED_ERROR) {
        const char* r = (code == 404 || code == 410) ? reason::not_found : reason::fetch_failed;
        return problem(r, "HTTP " + std::to_string(code) + " for " + shown);
      }
      if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        return problem(reason::uri_not_allowed, "scheme not allowed: " + shown);
      return problem(reason::fetch_failed, "fetching " + shown + ": " + detail);
    }
    if (code >= 300 && code < 400) {
      char* loc = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
      if (loc == nullptr)
        return problem(reason::fetch_failed,
                       "HTTP " + std::to_string(code) + " without Location for " + shown);
      std::string next = loc;
      UrlParts p;
      if (!url_parts(next, p) || p.scheme != origin.scheme || p.host != origin.host ||
          p.port != origin.port)
        return problem(reason::uri_not_allowed,
                       shown + " redirects to another host: " + redact_uri(next));
      if (hop >= policy.max_redirects)
        return problem(reason::fetch_failed, "too many redirects (max_redirects " +
                                                 std::to_string(policy.max_redirects) +
                                                 ") for " + shown);
      url = next;
      continue;
    }
    if (code != 200)
      return problem(reason::fetch_failed, "HTTP " + std::to_string(code) + " for " + shown);
    Fetched out;
    out.bytes = t.bytes;
    out.sha256 = sha.hex();
    return out;
  }
}

}  // namespace

// ---- public within the library ------------------------------------------------------------------

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot initialise sha256");
}
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }
void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_, data, n); }
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 15]);
  }
  return out;
}

std::string redact_uri(const std::string& uri) {
  if (scheme_of(uri) == "file") {
    auto q = uri.find_first_of("?#");
    return q == std::string::npos ? uri : uri.substr(0, q);
  }
  auto u = parse_url(uri);
  if (!u) {
    auto q = uri.find_first_of("?#@");
    return q == std::string::npos ? uri : uri.substr(0, q) + "...";
  }
  curl_url_set(u.get(), CURLUPART_USER, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_PASSWORD, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_QUERY, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_FRAGMENT, nullptr, 0);
  std::string out = url_get(u.get(), CURLUPART_URL);
  return out.empty() ? "(unprintable URI)" : out;
}

bool is_private_address(const ::sockaddr* sa) {
  auto v4 = [](std::uint32_t a) {  // host byte order
    auto in = [a](std::uint32_t net, int bits) {
      std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
      return (a & mask) == net;
    };
    return in(0x00000000, 8) ||    // 0.0.0.0/8 "this network"
           in(0x0A000000, 8) ||    // 10/8
           in(0x64400000, 10) ||   // 100.64/10 carrier-grade NAT
           in(0x7F000000, 8) ||    // loopback
           in(0xA9FE0000, 16) ||   // link-local
           in(0xAC100000, 12) ||   // 172.16/12
           in(0xC0A80000, 16) ||   // 192.168/16
           in(0xE0000000, 4) ||    // multicast
           in(0xF0000000, 4);      // reserved, broadcast
  };
  if (sa->sa_family == AF_INET)
    return v4(ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr));
  if (sa->sa_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    const unsigned char* b = a.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
      std::uint32_t x = (std::uint32_t{b[12]} << 24) | (std::uint32_t{b[13]} << 16) |
                        (std::uint32_t{b[14]} << 8) | b[15];
      return v4(x);
    }
    return IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a) ||
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||  // fe80::/10 link-local
           (b[0] & 0xfe) == 0xfc ||                    // fc00::/7 unique local
           b[0] == 0xff;                               // multicast
  }
  return true;  // unknown families are refused
}

std::variant<std::monostate, Problem> check_uri(const std::string& uri,
                                                const FetchPolicy& policy) {
  const std::string scheme = scheme_of(uri);
  const std::string shown = redact_uri(uri);
  if (scheme == "file") {
    auto r = file_rel(uri, policy, nullptr);
    if (auto* p = std::get_if<Problem>(&r)) return *p;
    return std::monostate{};
  }
  if (scheme != "https" && !(scheme == "http" && policy.allow_http))
    return problem(reason::uri_not_allowed,
                   "scheme '" + scheme + "' not allowed (https:// or file:// only): " + shown);
  UrlParts parts;
  if (!url_parts(uri, parts)) return problem(reason::uri_not_allowed, "malformed URI: " + shown);
  if (!host_allowed(parts.host, policy.allowed_hosts))
    return problem(reason::uri_not_allowed,
                   "host '" + parts.host + "' is not in allowed_hosts: " + shown);
  return std::monostate{};
}

std::variant<Fetched, Problem> fetch_to_fd(const std::string& uri, const FetchPolicy& policy,
                                           int fd) {
  auto ok = check_uri(uri, policy);
  if (auto* p = std::get_if<Problem>(&ok)) return *p;
  if (scheme_of(uri) == "file") return fetch_file(uri, policy, fd);
  return fetch_https(uri, policy, fd);
}

}  // namespace pressline::assets::detail
