#pragma once
// A tiny blocking HTTP/1.1 client for tests of loftd's HTTP endpoint (Boost.Beast). One
// connection per HttpClient, reused across requests (keep-alive), with a generous deadline;
// HTTPS (checked against a CA file) and HTTP Basic credentials on request.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace loft::testing {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  bool keep_alive = false;
};

struct HttpClientOptions {
  // Basic credentials sent with every request when `user` is not empty.
  std::string user;
  std::string password;
  // Sent as the Authorization header as it is, instead of user and password (malformed ones).
  std::string authorization;
  // HTTPS: the server's certificate must chain to this CA and name 127.0.0.1. Empty: plain.
  std::filesystem::path tls_ca_file;
  // HTTPS: a client certificate (PEM chain and key) to present. Empty: none.
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;
  // The address to connect to (a non-loopback one of this host tests the loopback rules).
  std::string host = "127.0.0.1";
};

class HttpClient {
 public:
  // Connects to options.host:port (and does the TLS handshake); throws std::runtime_error if it
  // cannot.
  explicit HttpClient(std::uint16_t port, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Throws std::runtime_error on an IO error (including the server closing the connection).
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::string& body = "");
  HttpResponse get(const std::string& target) { return request("GET", target); }
  HttpResponse post(const std::string& target, const std::string& body) {
    return request("POST", target, body);
  }
  // Sends `raw` bytes as they are and reads one response (malformed requests).
  HttpResponse raw(const std::string& raw);
  // HTTPS: the serial number (hex) of the server's certificate; "" on plain HTTP.
  std::string peer_certificate_serial() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
HttpResponse http_get(std::uint16_t port, const std::string& target,
                      const HttpClientOptions& options = {});

}  // namespace loft::testing
