#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <stdexcept>

namespace loft::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct HttpClient::Impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;

  HttpResponse read() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1ULL << 30);
    stream.expires_after(std::chrono::seconds(60));
    beast::error_code ec;
    bhttp::read(stream, buffer, parser, ec);
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

HttpClient::HttpClient(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  beast::error_code ec;
  impl_->stream.expires_after(std::chrono::seconds(60));
  impl_->stream.connect(asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) throw std::runtime_error("HTTP connect failed: " + ec.message());
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::string& body) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (req.method() == bhttp::verb::unknown) req.method_string(method);
  req.set(bhttp::field::host, "127.0.0.1");
  if (!body.empty() || method == "POST") {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  impl_->stream.expires_after(std::chrono::seconds(60));
  beast::error_code ec;
  bhttp::write(impl_->stream, req, ec);
  if (ec) throw std::runtime_error("HTTP write failed: " + ec.message());
  return impl_->read();
}

HttpResponse HttpClient::raw(const std::string& raw) {
  impl_->stream.expires_after(std::chrono::seconds(60));
  beast::error_code ec;
  asio::write(impl_->stream, asio::buffer(raw), ec);
  if (ec) throw std::runtime_error("raw write failed: " + ec.message());
  return impl_->read();
}

HttpResponse http_get(std::uint16_t port, const std::string& target) {
  HttpClient c(port);
  return c.get(target);
}

}  // namespace loft::testing
