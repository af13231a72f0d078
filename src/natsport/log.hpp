#pragma once
// The NATS port's logger (module-private): "nats", registered by loftd so SIGHUP's level reaches
// it; a clone of the default logger otherwise (tests).

#include <spdlog/spdlog.h>

#include <memory>

namespace loft::natsport {

inline std::shared_ptr<spdlog::logger> nats_log() {
  static auto log = [] {
    auto existing = spdlog::get("nats");
    return existing ? existing : spdlog::default_logger()->clone("nats");
  }();
  return log;
}

}  // namespace loft::natsport
