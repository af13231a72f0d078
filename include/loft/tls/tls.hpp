#pragma once
// TLS for loft's listeners (binary protocol, HTTP, later NATS), on Asio's SSL support over
// OpenSSL 3: the server context made from the configured PEM files, reloadable, and the
// identity a client certificate carries. Nothing of TLS itself is written here.

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "loft/common/error.hpp"

typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace loft::tls {

enum class ClientAuth { none, optional, required };

struct ServerFiles {
  std::filesystem::path cert_file;  // PEM chain, the server's certificate first
  std::filesystem::path key_file;   // PEM private key
  std::filesystem::path ca_file;    // PEM CA(s) for client certificates; "" = none
  ClientAuth client_auth = ClientAuth::none;
};

// A server context: TLS 1.2 at least (1.3 preferred), OpenSSL's default ciphers, no
// compression or renegotiation, the certificate and key checked to match, client certificates
// verified against ca_file as client_auth says. Fails (invalid_request) with a one-line detail
// naming the file that does not load.
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(const ServerFiles& files);

// The current server context of a listener. A connection takes current() when it is accepted
// and keeps it (through its shared_ptr) for its lifetime; reload() swaps in a new one for the
// connections accepted after it, or changes nothing when the files do not load. Io thread only.
class ServerContext {
 public:
  static Result<ServerContext> load(const ServerFiles& files);
  Result<void> reload(const ServerFiles& files);
  std::shared_ptr<boost::asio::ssl::context> current() const { return context_; }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
};

// Names of the verified peer certificate of `ssl`, in order: the subject's CN, then the subject
// alternative names (DNS, email, URI). Empty when the peer sent no certificate.
std::vector<std::string> peer_names(SSL* ssl);

// "serial=HEX subject=\"CN=...\"" of the context's own certificate, for a log line.
std::string describe_certificate(const boost::asio::ssl::context& context);
// The serial number of `cert` in upper-case hex without leading zeros ("1A2B"), as
// describe_certificate shows it; "?" when there is none to read.
std::string serial_hex(const X509* cert);

}  // namespace loft::tls
