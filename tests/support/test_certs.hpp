#pragma once
// Test certificates, made at test time with the `openssl` command (EC P-256 keys: fast) in a
// temporary directory that lives as long as the process: a CA and, signed by it, a server
// certificate for 127.0.0.1 and localhost, an expired one, client certificates for "alice"
// (subject CN; also an expired one), "bob" (subject alternative names only) and one naming
// both; a second CA with a server certificate of its own. get() makes them once per test binary.

#include <filesystem>
#include <string>

namespace loft::testing {

struct CertPair {
  std::string cert;  // PEM file
  std::string key;   // PEM file
};

class TestCerts {
 public:
  // Made on first use; throws (failing the test) when `openssl` is missing or fails.
  static const TestCerts& get();

  std::string ca;             // CA 1 (PEM certificate)
  CertPair server;            // CA 1: SAN IP:127.0.0.1, DNS:localhost
  CertPair expired;           // CA 1: same names, valid only on 1 Jan 2020
  CertPair alice;             // CA 1: client, CN=alice
  CertPair bob;               // CA 1: client, CN=client-b, SAN DNS:bob, email:bob@loft.test
  CertPair alice_and_bob;     // CA 1: client, CN=alice, SAN DNS:bob (names two users)
  CertPair expired_client;    // CA 1: client, CN=alice, valid only on 1 Jan 2020
  std::string other_ca;       // CA 2
  CertPair other_server;      // CA 2: SAN IP:127.0.0.1, DNS:localhost
  std::filesystem::path dir;  // where they all are

  // A new server certificate from CA 1 with serial `serial` (hex), same names as `server`,
  // written to `cert` (its key to `key`); the files are replaced atomically.
  void make_server_cert(const std::string& serial, const std::string& cert,
                        const std::string& key) const;
  // A copy of `server` in `dir` (server.pem, server.key): for a test that replaces it while
  // loftd runs (make_server_cert, then SIGHUP).
  CertPair copy_server_cert(const std::filesystem::path& dir) const;

 private:
  TestCerts();
  ~TestCerts();
};

}  // namespace loft::testing
