#pragma once
// The net layer's logger (module-private): "net", registered by loftd so SIGHUP's level reaches
// it; a clone of the default logger otherwise (tests).

#include <spdlog/spdlog.h>

#include <memory>

namespace loft::net {

inline std::shared_ptr<spdlog::logger> net_log() {
  static auto log = [] {
    auto existing = spdlog::get("net");
    return existing ? existing : spdlog::default_logger()->clone("net");
  }();
  return log;
}

}  // namespace loft::net
