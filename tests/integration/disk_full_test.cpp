// A really full disk. Method: a small tmpfs mounted on the real loftd's data dir (needs
// CAP_SYS_ADMIN; the test is skipped, saying why, where mounting is not permitted). The test
// fills the file system with a filler file, sees publishes answered with storage_full instead
// of a confirm (and a confirmed ack answered with the same error) and the daemon log it once,
// deletes the filler, sees publishes confirmed again without a restart, and checks every
// confirmed message byte for byte, and the ack, also after a restart.
// The same through fault injection, in process: storage_fault_test.cpp.

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "http_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A tmpfs of `size` mounted on `dir` (created if missing) for the object's lifetime. The
// unmount is lazy, so it succeeds even if a failed test left something open in it.
class TmpfsMount {
 public:
  TmpfsMount(fs::path dir, const std::string& size) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    const std::string data = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, data.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` in 64 KiB chunks until the file system is full (or `limit` bytes, a bound in
// case it is not a small tmpfs after all). Returns the bytes written.
std::uint64_t fill(const fs::path& path, std::uint64_t limit) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  const std::string chunk(64 << 10, 'x');
  std::uint64_t written = 0;
  while (written < limit) {
    const auto n = std::fwrite(chunk.data(), 1, chunk.size(), f);
    written += n;
    if (n < chunk.size() || std::fflush(f) != 0) break;
  }
  std::fclose(f);
  return written;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

Message message(const std::string& id) {
  Message m;
  m.id = id;
  m.payload = "payload of " + id + std::string(2000, '.');
  return m;
}

TEST(DiskFull, PublishesFailWhileFullAndSucceedAgainWithoutRestart) {
  TestDaemon d;
  TmpfsMount mount(d.data_dir(), "48m");
  if (!mount.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << d.data_dir() << " (" << mount.error()
                 << "): this test needs root or CAP_SYS_ADMIN";
  }
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  std::vector<std::string> confirmed;  // payloads, in offset order
  int next_id = 0;
  auto publish = [&]() -> Result<client::PublishResult> {
    auto m = message("m" + std::to_string(next_id++));
    auto payload = m.payload;
    auto r = c->publish("t", std::move(m));
    if (r) {
      EXPECT_EQ(r->offset, confirmed.size()) << "offsets are gapless";
      confirmed.push_back(std::move(payload));
    }
    return r;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(publish());
  // A consumer that holds message 0, to settle it while the disk is full.
  auto consumer = d.client("consumer");
  client::SubscribeOptions so;
  so.topic = "t";
  so.group = "g";
  auto sub = consumer->subscribe(so);
  ASSERT_TRUE(sub) << sub.error().to_string();
  ASSERT_TRUE(eventually([&] {
    auto got = (*sub)->receive(100ms);
    return got && !got->empty();
  }));

  // Fill the disk, then publish until the broker says it is full (the WAL may still have a
  // little room in its current block). Bounded in count.
  const auto filler = d.data_dir() / "filler";
  ASSERT_GT(fill(filler, 256ULL << 20), 0u);
  std::optional<Error> refused;
  for (int i = 0; i < 20'000 && !refused; ++i) {
    auto r = publish();
    if (!r) refused = r.error();
  }
  ASSERT_TRUE(refused) << "20000 publishes of 2 KB were confirmed on a full 48 MiB tmpfs";
  const auto confirmed_when_full = confirmed.size();
  ASSERT_EQ(refused->code, Errc::storage_full) << refused->to_string() << "\n" << d.log();
  EXPECT_NE(refused->detail.find("disk full"), std::string::npos) << refused->detail;
  for (int i = 0; i < 5; ++i) {
    auto r = publish();
    ASSERT_FALSE(r) << "confirmed while the disk is full";
    EXPECT_EQ(r.error().code, Errc::storage_full);
  }
  // Reads still work, and everything confirmed is there.
  auto before = fetch_all(*c, "t");
  ASSERT_TRUE(before) << before.error().to_string();
  EXPECT_EQ(before->size(), confirmed.size());
  // A settle that asks for a durable confirm gets the error too, instead of waiting.
  auto settled = (*sub)->ack_confirmed({0});
  ASSERT_FALSE(settled) << "an ack was confirmed durable on a full disk";
  EXPECT_EQ(settled.error().code, Errc::storage_full) << settled.error().to_string();
  EXPECT_EQ(count(d.log(), "storage unwritable"), 1u) << "logged once per episode:\n" << d.log();
  // Exposed: not ready, and the metrics say why.
  EXPECT_EQ(http_get(d.http_port(), "/readyz").status, 503u);
  EXPECT_EQ(http_get(d.http_port(), "/healthz").status, 200u);
  const auto metrics = http_get(d.http_port(), "/metrics").body;
  EXPECT_NE(metrics.find("\nloft_storage_writable 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("\nloft_storage_failed_writes_total 0\n"), std::string::npos);

  // Space is back: loftd resumes writes by itself.
  fs::remove(filler);
  ASSERT_TRUE(eventually([&] { return count(d.log(), "storage writable again") == 1; }, 60s))
      << d.log();
  for (int i = 0; i < 20; ++i) {
    auto r = publish();
    ASSERT_TRUE(r) << "after freeing space: " << r.error().to_string();
  }
  EXPECT_EQ(http_get(d.http_port(), "/readyz").status, 200u);
  EXPECT_NE(http_get(d.http_port(), "/metrics").body.find("\nloft_storage_writable 1\n"),
            std::string::npos);
  // The ack stayed applied; the groups' retry writes it (a confirmed settle waits for that).
  ASSERT_TRUE(eventually([&] { return (*sub)->ack_confirmed({0}).has_value(); }, 60s));
  EXPECT_EQ(c->describe_group("t", "g")->ack_floor, 1u);
  sub->reset();
  consumer.reset();

  auto check = [&] {
    auto stored = fetch_all(*c, "t");
    ASSERT_TRUE(stored) << stored.error().to_string();
    ASSERT_EQ(stored->size(), confirmed.size());
    for (std::size_t i = 0; i < confirmed.size(); ++i) {
      ASSERT_EQ(stored->at(i).offset.value, i);
      ASSERT_EQ(stored->at(i).message.payload, confirmed[i]) << "at offset " << i;
    }
  };
  check();
  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  c = d.client();
  check();
  EXPECT_EQ(c->describe_group("t", "g")->ack_floor, 1u) << "the ack is durable";
  ASSERT_EQ(d.stop(), 0) << d.log();  // before the unmount
  RecordProperty("confirmed_messages", static_cast<int>(confirmed.size()));
  std::printf("disk full: %zu messages confirmed before the first refusal, %zu in all\n",
              confirmed_when_full, confirmed.size());
}

}  // namespace
}  // namespace loft::testing
