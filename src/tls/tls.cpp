#include "loft/tls/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/error.hpp>
#include <memory>

namespace loft::tls {

namespace ssl = boost::asio::ssl;

namespace {

// Sessions resumed on another context of the same listener (after a reload) must carry the same
// id context; OpenSSL refuses resumption with client verification when it is unset.
constexpr unsigned char kSessionIdContext[] = "loft";

tl::unexpected<Error> file_failed(std::string_view what, const std::filesystem::path& file,
                                  const boost::system::error_code& ec) {
  return fail(Errc::invalid_request, "cannot load TLS " + std::string(what) + " file " +
                                         file.string() + ": " + ec.message());
}

// The last OpenSSL error in this thread as text, and the queue cleared.
std::string openssl_error() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "error " + std::to_string(code);
}

std::string to_utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  const int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) return {};
  std::string text(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return text;
}

std::string name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_server_context(const ServerFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return fail(Errc::internal_error, "cannot set TLS 1.2 as the minimum: " + openssl_error());
  }
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);

  boost::system::error_code ec;
  if (files.cert_file.empty()) return fail(Errc::invalid_request, "tls_cert_file is not set");
  if (files.key_file.empty()) return fail(Errc::invalid_request, "tls_key_file is not set");
  if (context->use_certificate_chain_file(files.cert_file.string(), ec); ec) {
    return file_failed("certificate", files.cert_file, ec);
  }
  context->use_private_key_file(files.key_file.string(), ssl::context::pem, ec);
  const bool mismatch =
      ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (ec && !mismatch) return file_failed("key", files.key_file, ec);
  ERR_clear_error();
  if (mismatch || SSL_CTX_check_private_key(ctx) != 1) {
    return fail(Errc::invalid_request, "TLS key file " + files.key_file.string() +
                                           " does not match the certificate in " +
                                           files.cert_file.string());
  }
  if (!files.ca_file.empty()) {
    if (context->load_verify_file(files.ca_file.string(), ec); ec) {
      return file_failed("CA", files.ca_file, ec);
    }
    // The CAs a client may pick its certificate for.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca_file.string().c_str());
    if (names == nullptr) {
      return fail(Errc::invalid_request,
                  "cannot load TLS CA file " + files.ca_file.string() + ": " + openssl_error());
    }
    SSL_CTX_set_client_CA_list(ctx, names);
  } else if (files.client_auth != ClientAuth::none) {
    return fail(Errc::invalid_request, "client certificates need tls_ca_file");
  }
  switch (files.client_auth) {
    case ClientAuth::none:
      context->set_verify_mode(ssl::verify_none);
      break;
    case ClientAuth::optional:
      // OpenSSL asks for a certificate and checks one that is sent; a client that sends none
      // goes on without one (peer_names is then empty).
      context->set_verify_mode(ssl::verify_peer);
      break;
    case ClientAuth::required:
      context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      break;
  }
  return context;
}

Result<ServerContext> ServerContext::load(const ServerFiles& files) {
  auto context = make_server_context(files);
  if (!context) return tl::unexpected(context.error());
  ServerContext s;
  s.context_ = std::move(*context);
  return s;
}

Result<void> ServerContext::reload(const ServerFiles& files) {
  auto context = make_server_context(files);
  if (!context) return tl::unexpected(context.error());
  context_ = std::move(*context);
  return {};
}

std::vector<std::string> peer_names(SSL* ssl) {
  std::vector<std::string> names;
  if (ssl == nullptr) return names;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return names;
  const X509_NAME* subject = X509_get_subject_name(cert);
  if (const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0) {
    names.push_back(to_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))));
  }
  auto* alt =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (alt != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(alt, i);
      if (n->type == GEN_DNS || n->type == GEN_EMAIL || n->type == GEN_URI) {
        names.push_back(to_utf8(n->d.ia5));
      }
    }
    GENERAL_NAMES_free(alt);
  }
  return names;
}

std::string describe_certificate(const ssl::context& context) {
  // native_handle() is not const in Asio; reading the certificate changes nothing.
  X509* cert = SSL_CTX_get0_certificate(const_cast<ssl::context&>(context).native_handle());
  if (cert == nullptr) return "no certificate";
  return "serial=" + serial_hex(cert) + " subject=\"" + name_text(X509_get_subject_name(cert)) +
         "\"";
}

std::string serial_hex(const X509* cert) {
  std::string serial = "?";
  if (cert == nullptr) return serial;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr); bn != nullptr) {
    if (char* hex = BN_bn2hex(bn); hex != nullptr) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return serial;
}

}  // namespace loft::tls
