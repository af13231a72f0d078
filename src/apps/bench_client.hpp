#pragma once
// `loft bench publish | consume | e2e`: the modes that run against a broker, through the
// client library. See bench.hpp for the parameters and the report.

#include <boost/json/object.hpp>

#include "bench.hpp"
#include "loft/client/client.hpp"

namespace loft::apps::bench {

// Runs a publish, consume or e2e benchmark against the broker at `connection`.
Result<boost::json::object> run(const Params& params, const client::Options& connection);

}  // namespace loft::apps::bench
