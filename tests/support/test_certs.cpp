#include "test_certs.hpp"

#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <vector>

#include "test_daemon.hpp"

namespace loft::testing {
namespace fs = std::filesystem;

namespace {

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/env", "openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run_process(argv);
  if (r.exit_code != 0) {
    std::string command;
    for (const auto& a : args) command += a + " ";
    throw std::runtime_error("test certificates: 'openssl " + command + "' failed: " + r.err);
  }
}

void write(const fs::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
}

constexpr const char* kServerExtensions =
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";

}  // namespace

TestCerts::~TestCerts() {
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

const TestCerts& TestCerts::get() {
  static const TestCerts certs;
  return certs;
}

TestCerts::TestCerts() {
  // Not a TempDir: the certificates outlive every test of the binary, and the directory is
  // small; it goes with the system's temp dir.
  dir = fs::temp_directory_path() / ("loft-certs-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto p = [&](const std::string& name) { return (dir / name).string(); };
  const auto key = [&](const std::string& name) {
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
             p(name)});
  };
  const auto make_ca = [&](const std::string& name, const std::string& cn) {
    key(name + ".key");
    openssl({"req", "-x509", "-new", "-key", p(name + ".key"), "-subj", "/CN=" + cn, "-days",
             "3650", "-out", p(name + ".pem")});
  };
  // A certificate for `name`.key signed by `ca`, with the extensions in `ext`.
  const auto sign = [&](const std::string& name, const std::string& subject, const std::string& ext,
                        const std::string& ca_name, const std::string& serial) {
    key(name + ".key");
    write(dir / (name + ".ext"), ext);
    openssl({"req", "-new", "-key", p(name + ".key"), "-subj", subject, "-out", p(name + ".csr")});
    openssl({"x509", "-req", "-in", p(name + ".csr"), "-CA", p(ca_name + ".pem"), "-CAkey",
             p(ca_name + ".key"), "-set_serial", "0x" + serial, "-days", "365", "-extfile",
             p(name + ".ext"), "-out", p(name + ".pem")});
  };
  make_ca("ca", "loft test CA");
  make_ca("ca2", "another CA");
  sign("server", "/CN=localhost", kServerExtensions, "ca", "1001");
  sign("other-server", "/CN=localhost", kServerExtensions, "ca2", "2001");
  const std::string client_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
  sign("alice", "/CN=alice", client_ext, "ca", "1002");
  sign("bob", "/CN=client-b", client_ext + "subjectAltName=DNS:bob,email:bob@loft.test\n", "ca",
       "1003");
  sign("alice-and-bob", "/CN=alice", client_ext + "subjectAltName=DNS:bob\n", "ca", "1010");

  // Expired: `openssl x509 -req` sets only a number of days from now; `openssl ca` takes
  // explicit dates.
  key("expired.key");
  openssl({"req", "-new", "-key", p("expired.key"), "-subj", "/CN=localhost", "-out",
           p("expired.csr")});
  fs::create_directories(dir / "newcerts");
  write(dir / "index.txt", "");
  write(dir / "serial", "1004\n");
  write(dir / "ca.cnf", "[ca]\ndefault_ca = loft\n[loft]\ndatabase = " + p("index.txt") +
                            "\nnew_certs_dir = " + p("newcerts") + "\nserial = " + p("serial") +
                            "\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n"
                            "[server]\n" +
                            kServerExtensions + "[client]\n" + client_ext);
  openssl({"ca", "-batch", "-config", p("ca.cnf"), "-cert", p("ca.pem"), "-keyfile", p("ca.key"),
           "-in", p("expired.csr"), "-out", p("expired.pem"), "-startdate", "20200101000000Z",
           "-enddate", "20200102000000Z", "-extensions", "server", "-notext"});
  key("expired-client.key");
  openssl({"req", "-new", "-key", p("expired-client.key"), "-subj", "/CN=alice", "-out",
           p("expired-client.csr")});
  openssl({"ca", "-batch", "-config", p("ca.cnf"), "-cert", p("ca.pem"), "-keyfile", p("ca.key"),
           "-in", p("expired-client.csr"), "-out", p("expired-client.pem"), "-startdate",
           "20200101000000Z", "-enddate", "20200102000000Z", "-extensions", "client", "-notext"});

  // The private keys' text is a secret loftd must never log (never_log): a line of each.
  for (const char* key_file : {"server.key", "alice.key", "bob.key", "ca.key"}) {
    std::ifstream in(dir / key_file);
    std::string line;
    std::getline(in, line);  // -----BEGIN PRIVATE KEY-----
    if (std::getline(in, line)) never_log(line);
  }

  ca = p("ca.pem");
  other_ca = p("ca2.pem");
  server = {p("server.pem"), p("server.key")};
  expired = {p("expired.pem"), p("expired.key")};
  alice = {p("alice.pem"), p("alice.key")};
  bob = {p("bob.pem"), p("bob.key")};
  alice_and_bob = {p("alice-and-bob.pem"), p("alice-and-bob.key")};
  expired_client = {p("expired-client.pem"), p("expired-client.key")};
  other_server = {p("other-server.pem"), p("other-server.key")};
}

void TestCerts::make_server_cert(const std::string& serial, const std::string& cert,
                                 const std::string& key) const {
  const auto p = [&](const std::string& name) { return (dir / name).string(); };
  const std::string name = "server-" + serial;
  openssl({"x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
           "-set_serial", "0x" + serial, "-days", "365", "-extfile", p("server.ext"), "-out",
           p(name + ".pem")});
  fs::copy_file(p(name + ".pem"), cert + ".tmp", fs::copy_options::overwrite_existing);
  fs::copy_file(p("server.key"), key + ".tmp", fs::copy_options::overwrite_existing);
  fs::rename(key + ".tmp", key);
  fs::rename(cert + ".tmp", cert);
}

CertPair TestCerts::copy_server_cert(const fs::path& to) const {
  CertPair copy{(to / "server.pem").string(), (to / "server.key").string()};
  fs::copy_file(server.cert, copy.cert);
  fs::copy_file(server.key, copy.key);
  return copy;
}

}  // namespace loft::testing
