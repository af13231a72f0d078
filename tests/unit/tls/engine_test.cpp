// tls::Engine without sockets: a client and a server engine, the bytes between them moved by
// the test (whole, in pieces, one at a time, tampered with).

#include "loft/tls/engine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/error.hpp>
#include <memory>
#include <string>
#include <vector>

#include "loft/tls/tls.hpp"
#include "test_certs.hpp"

namespace loft::tls {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using ::testing::HasSubstr;
using testing::TestCerts;
using Status = Engine::Status;

// What the peer of `from` receives: all of `from`'s output, in pieces of at most `piece`.
void pump(Engine& from, Engine& to, std::size_t piece = 1 << 20) {
  std::vector<char> buffer(piece);
  while (const std::size_t n = from.take_output(buffer)) to.feed({buffer.data(), n});
}

std::string take_all_output(Engine& from) {
  std::string out(from.output_size(), '\0');
  out.resize(from.take_output(out));
  return out;
}

// Everything `e` can decrypt now, read through a buffer of `buffer` bytes.
std::string read_all(Engine& e, std::size_t buffer = 1 << 16) {
  std::string out;
  std::vector<char> room(buffer);
  for (;;) {
    const auto r = e.read(room);
    out.append(room.data(), r.bytes);
    if (r.status != Status::done) return out;
  }
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

class TlsEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& certs = TestCerts::get();
    auto server = make_server_context({certs.server.cert, certs.server.key, "", ClientAuth::none});
    ASSERT_TRUE(server) << server.error().to_string();
    server_context_ = *server;
    use_ca(certs.ca);
  }

  void use_ca(const std::string& ca) {
    client_context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    client_context_->load_verify_file(ca);
    client_context_->set_verify_mode(ssl::verify_peer);
    server_ = std::make_unique<Engine>(*server_context_, Engine::Role::server);
    client_ = std::make_unique<Engine>(*client_context_, Engine::Role::client);
    ASSERT_EQ(SSL_set1_host(client_->native_handle(), "localhost"), 1);
  }

  // Both sides' handshakes, the bytes moved whole; the last statuses.
  std::pair<Status, Status> handshake() {
    Status c = Status::want_read;
    Status s = Status::want_read;
    for (int round = 0; round < 8; ++round) {
      c = client_->handshake();
      pump(*client_, *server_);
      s = server_->handshake();
      pump(*server_, *client_);
      if ((c == Status::done && s == Status::done) || c == Status::failed || s == Status::failed) {
        break;
      }
    }
    return {c, s};
  }

  std::shared_ptr<ssl::context> server_context_;
  std::unique_ptr<ssl::context> client_context_;
  std::unique_ptr<Engine> server_;
  std::unique_ptr<Engine> client_;
};

TEST_F(TlsEngine, HandshakesAndCarriesDataBothWays) {
  EXPECT_FALSE(client_->handshake_done());
  ASSERT_EQ(handshake(), std::pair(Status::done, Status::done));
  EXPECT_TRUE(client_->handshake_done());
  EXPECT_TRUE(server_->handshake_done());

  ASSERT_TRUE(client_->write(std::string_view("HELLO")));
  pump(*client_, *server_);
  EXPECT_EQ(read_all(*server_), "HELLO");
  ASSERT_TRUE(server_->write(std::string_view("HELLO_OK")));
  pump(*server_, *client_);
  EXPECT_EQ(read_all(*client_), "HELLO_OK");
  // Nothing more: the next read wants bytes.
  std::array<char, 16> room{};
  const auto r = server_->read(room);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_EQ(r.status, Status::want_read);
}

// A delivery batch far larger than a record, carried in pieces smaller than a record and read
// through a buffer smaller than a record: every byte arrives, in order.
TEST_F(TlsEngine, ALargeBatchArrivesWholeThroughSmallPiecesAndASmallBuffer) {
  ASSERT_EQ(handshake(), std::pair(Status::done, Status::done));
  const std::string batch = pattern(1 << 20);
  ASSERT_TRUE(server_->write(batch));
  // At least one record per 16 KiB, each with its overhead.
  EXPECT_GT(server_->output_size(), batch.size());
  EXPECT_LT(server_->output_size(), batch.size() + batch.size() / 100);
  std::string got;
  std::vector<char> piece(1000);
  while (const std::size_t n = server_->take_output(piece)) {
    client_->feed({piece.data(), n});
    got += read_all(*client_, 3000);
  }
  EXPECT_EQ(client_->input_size(), 0u);
  ASSERT_EQ(got.size(), batch.size());
  EXPECT_TRUE(got == batch);
}

// A record is decrypted only once its last byte is in; the handshake too goes on byte by byte.
TEST_F(TlsEngine, BytesFedOneAtATimeDecryptWhenTheRecordIsWhole) {
  Status c = Status::want_read;
  Status s = Status::want_read;
  for (int round = 0; round < 8 && !(c == Status::done && s == Status::done); ++round) {
    c = client_->handshake();
    for (const char byte : take_all_output(*client_)) {
      server_->feed({&byte, 1});
      s = server_->handshake();
      ASSERT_NE(s, Status::failed) << server_->error().message();
    }
    for (const char byte : take_all_output(*server_)) {
      client_->feed({&byte, 1});
      c = client_->handshake();
      ASSERT_NE(c, Status::failed) << client_->error().message();
    }
  }
  ASSERT_EQ(std::pair(c, s), std::pair(Status::done, Status::done));

  // One record of five bytes, then five records of one byte each.
  ASSERT_TRUE(client_->write(std::string_view("whole")));
  for (const char ch : std::string("bytes")) ASSERT_TRUE(client_->write({&ch, 1}));
  const std::string wire = take_all_output(*client_);
  std::string got;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    server_->feed({&wire[i], 1});
    const std::string now = read_all(*server_, 1);
    if (!now.empty()) {
      EXPECT_EQ(server_->input_size(), 0u) << "decrypted before the record ended";
    }
    got += now;
  }
  EXPECT_EQ(got, "wholebytes");
}

TEST_F(TlsEngine, AServerFromAnotherCaFailsTheClientWithTheVerifyReason) {
  use_ca(TestCerts::get().other_ca);
  const auto [c, s] = handshake();
  ASSERT_EQ(c, Status::failed);
  EXPECT_EQ(client_->error().category(), asio::error::get_ssl_category());
  EXPECT_THAT(ERR_reason_error_string(static_cast<unsigned long>(client_->error().value())),
              HasSubstr("certificate verify failed"));
  // The client's alert told the server why.
  EXPECT_EQ(s, Status::failed);
  EXPECT_THAT(server_->error().message(), HasSubstr("unknown ca"));
}

TEST_F(TlsEngine, AClientNamingAnotherHostIsRefused) {
  ASSERT_EQ(SSL_set1_host(client_->native_handle(), "elsewhere.example"), 1);
  EXPECT_EQ(handshake().first, Status::failed);
  EXPECT_EQ(SSL_get_verify_result(client_->native_handle()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsEngine, BytesThatAreNoTlsFailTheHandshake) {
  server_->feed(std::string_view("\x0c\0\0\0\x01\0\0\0\x01\0\0\0", 12));  // a loft frame header
  EXPECT_EQ(server_->handshake(), Status::failed);
  EXPECT_EQ(server_->error().category(), asio::error::get_ssl_category());
}

TEST_F(TlsEngine, ATamperedRecordFailsTheReadAndQueuesAnAlert) {
  ASSERT_EQ(handshake(), std::pair(Status::done, Status::done));
  ASSERT_TRUE(client_->write(std::string_view("publish this")));
  std::string wire = take_all_output(*client_);
  wire[wire.size() - 3] ^= 0x20;
  server_->feed(wire);
  std::array<char, 64> room{};
  const auto r = server_->read(room);
  EXPECT_EQ(r.bytes, 0u);
  ASSERT_EQ(r.status, Status::failed);
  EXPECT_EQ(server_->error().category(), asio::error::get_ssl_category());
  EXPECT_GT(server_->output_size(), 0u) << "no alert for the client";
  // The client learns it from the alert.
  pump(*server_, *client_);
  EXPECT_EQ(client_->read(room).status, Status::failed);
}

TEST_F(TlsEngine, CloseNotifyEndsTheStreamOnBothSides) {
  ASSERT_EQ(handshake(), std::pair(Status::done, Status::done));
  ASSERT_TRUE(client_->write(std::string_view("last words")));
  EXPECT_EQ(client_->shutdown(), Status::want_read);  // ours sent, theirs not yet read
  pump(*client_, *server_);
  std::array<char, 64> room{};
  auto r = server_->read(room);
  EXPECT_EQ(std::string(room.data(), r.bytes), "last words");
  r = server_->read(room);
  EXPECT_EQ(r.status, Status::closed);
  EXPECT_EQ(server_->error(), asio::error::eof);
  EXPECT_EQ(server_->shutdown(), Status::done);  // both close_notify now
  pump(*server_, *client_);
  EXPECT_EQ(client_->shutdown(), Status::done);
}

}  // namespace
}  // namespace loft::tls
