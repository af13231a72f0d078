#pragma once
// The `loft` commands, one family per file; loft_main.cpp dispatches on the first word. Each
// takes the parsed command line, prints its result on stdout and returns the exit status;
// failures are thrown as cli::Failure (see cli.hpp).

#include "cli.hpp"

namespace loft::cli {

int topic_command(Common& c);  // cli_topic.cpp
int pub_command(Common& c);    // cli_publish.cpp
int fetch_command(Common& c);  // cli_publish.cpp
int sub_command(Common& c);    // cli_group.cpp
int group_command(Common& c);  // cli_group.cpp
int dlq_command(Common& c);    // cli_dlq.cpp
int admin_command(Common& c);  // cli_admin.cpp
int bench_command(Common& c);  // cli_bench.cpp
int user_command(Common& c);   // cli_user.cpp

}  // namespace loft::cli
