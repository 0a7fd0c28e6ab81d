#include "beacon-collector/store/record_codec.hpp"

#include <cstdint>
#include <cstring>

namespace vantage::collector::store {
namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u32(std::uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(b, 4);
  }
  void u64(std::uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(b, 8);
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void opt_int(const std::optional<int>& v) {
    out_.push_back(v ? 1 : 0);
    if (v) u32(static_cast<std::uint32_t>(*v));
  }
  void opt_f64(const std::optional<double>& v) {
    out_.push_back(v ? 1 : 0);
    if (v) f64(*v);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  std::uint32_t u32() {
    if (!take(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
    return v;
  }
  std::uint64_t u64() {
    if (!take(8)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64() {
    const std::uint64_t bits = u64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  void str(std::string& s) {
    const std::uint32_t n = u32();
    if (!take(n)) return;
    s.assign(p_, n);
  }
  bool flag() {
    if (!take(1)) return false;
    if (p_[0] != 0 && p_[0] != 1) ok_ = false;
    return p_[0] == 1;
  }
  void opt_int(std::optional<int>& v) {
    if (flag()) v = static_cast<int>(u32());
  }
  void opt_f64(std::optional<double>& v) {
    if (flag()) v = f64();
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    p_ = in_.data();
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
  const char* p_ = nullptr;
  bool ok_ = true;
};

}  // namespace

void encode_reports(const std::vector<BrowserRecord>& records, std::string& out) {
  Writer w(out);
  w.u32(static_cast<std::uint32_t>(records.size()));
  for (const BrowserRecord& r : records) {
    w.i64(r.received_ns);
    w.i64(r.event_ns);
    w.str(r.kind);
    w.str(r.type);
    w.str(r.endpoint);
    w.str(r.url);
    w.str(r.url_template);
    w.str(r.origin);
    w.str(r.nel_type);
    w.str(r.nel_phase);
    w.opt_int(r.status_code);
    w.str(r.method);
    w.str(r.protocol);
    w.opt_f64(r.elapsed_ms);
    w.str(r.server_ip);
    w.u32(r.server_asn);
    w.str(r.server_as_org);
    w.f64(r.weight);
    w.str(r.client_prefix);
    w.str(r.country);
    w.str(r.city);
    w.u32(r.asn);
    w.str(r.isp);
    w.str(r.ua_family);
    w.u32(static_cast<std::uint32_t>(r.ua_major));
    w.str(r.body);
  }
}

bool decode_reports(std::string_view bytes, std::vector<BrowserRecord>& records) {
  Reader in(bytes);
  const std::uint32_t n = in.u32();
  // Each record takes at least 100 bytes: a count beyond that is not an encoding of ours.
  if (!in.ok() || n > bytes.size() / 100 + 1) return false;
  records.clear();
  records.resize(n);
  for (BrowserRecord& r : records) {
    r.received_ns = in.i64();
    r.event_ns = in.i64();
    in.str(r.kind);
    in.str(r.type);
    in.str(r.endpoint);
    in.str(r.url);
    in.str(r.url_template);
    in.str(r.origin);
    in.str(r.nel_type);
    in.str(r.nel_phase);
    in.opt_int(r.status_code);
    in.str(r.method);
    in.str(r.protocol);
    in.opt_f64(r.elapsed_ms);
    in.str(r.server_ip);
    r.server_asn = in.u32();
    in.str(r.server_as_org);
    r.weight = in.f64();
    in.str(r.client_prefix);
    in.str(r.country);
    in.str(r.city);
    r.asn = in.u32();
    in.str(r.isp);
    in.str(r.ua_family);
    r.ua_major = static_cast<int>(in.u32());
    in.str(r.body);
    if (!in.ok()) return false;
  }
  return in.done();
}

}  // namespace vantage::collector::store
