#include "http_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <optional>
#include <stdexcept>

#include "loft/tls/tls.hpp"

namespace loft::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::string base64(const std::string& text) {
  std::string out(beast::detail::base64::encoded_size(text.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), text.data(), text.size()));
  return out;
}

}  // namespace

struct HttpClient::Impl {
  asio::io_context io;
  HttpClientOptions options;
  beast::tcp_stream stream{io};
  std::optional<asio::ssl::context> tls_context;
  std::optional<beast::ssl_stream<beast::tcp_stream&>> tls;
  beast::flat_buffer buffer;

  // Calls f with the stream requests go through: TLS over the TCP stream, or the TCP stream.
  template <class F>
  auto with_stream(F&& f) {
    if (tls) return f(*tls);
    return f(stream);
  }

  HttpResponse read() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1ULL << 30);
    stream.expires_after(std::chrono::seconds(60));
    beast::error_code ec;
    with_stream([&](auto& s) { bhttp::read(s, buffer, parser, ec); });
    if (ec) throw std::runtime_error("HTTP read failed: " + ec.message());
    auto res = parser.release();
    HttpResponse out;
    out.status = res.result_int();
    out.body = res.body();
    out.keep_alive = res.keep_alive();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(field.value());
    }
    return out;
  }
};

HttpClient::HttpClient(std::uint16_t port, HttpClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  beast::error_code ec;
  impl_->stream.expires_after(std::chrono::seconds(60));
  impl_->stream.connect(asio::ip::tcp::endpoint{asio::ip::make_address(impl_->options.host), port},
                        ec);
  if (ec) throw std::runtime_error("HTTP connect failed: " + ec.message());
  if (impl_->options.tls_ca_file.empty()) return;
  auto& context = impl_->tls_context.emplace(asio::ssl::context::tls_client);
  context.load_verify_file(impl_->options.tls_ca_file.string());
  context.set_verify_mode(asio::ssl::verify_peer);
  if (!impl_->options.tls_cert_file.empty()) {
    context.use_certificate_chain_file(impl_->options.tls_cert_file.string());
    context.use_private_key_file(impl_->options.tls_key_file.string(), asio::ssl::context::pem);
  }
  auto& tls = impl_->tls.emplace(impl_->stream, context);
  tls.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  tls.handshake(asio::ssl::stream_base::client, ec);
  if (ec) throw std::runtime_error("TLS handshake failed: " + ec.message());
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::string& body) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (req.method() == bhttp::verb::unknown) req.method_string(method);
  req.set(bhttp::field::host, "127.0.0.1");
  const auto& o = impl_->options;
  if (!o.authorization.empty()) {
    req.set(bhttp::field::authorization, o.authorization);
  } else if (!o.user.empty()) {
    req.set(bhttp::field::authorization, "Basic " + base64(o.user + ":" + o.password));
  }
  if (!body.empty() || method == "POST") {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  impl_->stream.expires_after(std::chrono::seconds(60));
  beast::error_code ec;
  impl_->with_stream([&](auto& s) { bhttp::write(s, req, ec); });
  if (ec) throw std::runtime_error("HTTP write failed: " + ec.message());
  return impl_->read();
}

HttpResponse HttpClient::raw(const std::string& raw) {
  impl_->stream.expires_after(std::chrono::seconds(60));
  beast::error_code ec;
  impl_->with_stream([&](auto& s) { asio::write(s, asio::buffer(raw), ec); });
  if (ec) throw std::runtime_error("raw write failed: " + ec.message());
  return impl_->read();
}

std::string HttpClient::peer_certificate_serial() const {
  if (!impl_->tls) return "";
  X509* cert = SSL_get0_peer_certificate(impl_->tls->native_handle());
  if (cert == nullptr) return "";
  return tls::serial_hex(cert);
}

HttpResponse http_get(std::uint16_t port, const std::string& target,
                      const HttpClientOptions& options) {
  HttpClient c(port, options);
  return c.get(target);
}

}  // namespace loft::testing
