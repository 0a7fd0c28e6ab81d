#include "beacon-collector/enrich/geoip.hpp"

#include <maxminddb.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

namespace vantage::collector::enrich {
namespace {

class MmdbCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mmdb"; }
  std::string message(int code) const override { return MMDB_strerror(code); }
};

std::atomic<std::uint64_t> g_lookup_errors{0};

// One open .mmdb file (MMDB_s is not movable: it owns a mapping; keep it on the heap).
struct Db {
  MMDB_s mmdb{};
  explicit Db(const std::string& path) {
    const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &mmdb);
    if (status != MMDB_SUCCESS) {
      const int code = status == MMDB_IO_ERROR ? errno : status;
      throw std::system_error(code, status == MMDB_IO_ERROR ? std::generic_category()
                                                            : mmdb_category(),
                              "cannot open MaxMind database \"" + path + "\"");
    }
  }
  ~Db() { MMDB_close(&mmdb); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
};

std::string get_string(MMDB_entry_s* entry, const char* const* path) {
  MMDB_entry_data_s data{};
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) return {};
  if (data.type != MMDB_DATA_TYPE_UTF8_STRING) return {};
  return std::string(data.utf8_string, data.data_size);
}

std::uint32_t get_u32(MMDB_entry_s* entry, const char* const* path) {
  MMDB_entry_data_s data{};
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) return 0;
  switch (data.type) {
    case MMDB_DATA_TYPE_UINT32: return data.uint32;
    case MMDB_DATA_TYPE_UINT16: return data.uint16;
    case MMDB_DATA_TYPE_INT32: return data.int32 > 0 ? static_cast<std::uint32_t>(data.int32) : 0;
    case MMDB_DATA_TYPE_UINT64: return static_cast<std::uint32_t>(data.uint64);
    default: return 0;
  }
}

// Returns an entry for `addr`, or nullopt when not found or on a lookup error (counted).
std::optional<MMDB_entry_s> find(const Db& db, const IpAddress& addr) {
  sockaddr_storage ss;
  addr.to_sockaddr(&ss);
  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s r =
      MMDB_lookup_sockaddr(&db.mmdb, reinterpret_cast<const sockaddr*>(&ss), &mmdb_error);
  if (mmdb_error != MMDB_SUCCESS) {
    g_lookup_errors.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  if (!r.found_entry) return std::nullopt;
  return r.entry;
}

}  // namespace

const std::error_category& mmdb_category() noexcept {
  static const MmdbCategory category;
  return category;
}

struct GeoIp::Databases {
  std::unique_ptr<Db> city, asn, isp;
};

GeoIp::GeoIp(std::string city_db, std::string asn_db, std::string isp_db)
    : city_path_(std::move(city_db)), asn_path_(std::move(asn_db)), isp_path_(std::move(isp_db)) {
  dbs_ = open_databases();
}

std::shared_ptr<const GeoIp::Databases> GeoIp::open_databases() const {
  auto d = std::make_shared<Databases>();
  if (!city_path_.empty()) d->city = std::make_unique<Db>(city_path_);
  if (!asn_path_.empty()) d->asn = std::make_unique<Db>(asn_path_);
  if (!isp_path_.empty()) d->isp = std::make_unique<Db>(isp_path_);
  return d;
}

GeoIp::~GeoIp() = default;

std::shared_ptr<const GeoIp::Databases> GeoIp::snapshot() const {
  std::lock_guard lock(mutex_);
  return dbs_;
}

std::uint64_t GeoIp::lookup_errors() const noexcept {
  return g_lookup_errors.load(std::memory_order_relaxed);
}

GeoInfo GeoIp::lookup(const IpAddress& addr) const {
  GeoInfo info;
  const auto d = snapshot();
  if (!d) return info;
  if (d->city) {
    if (auto e = find(*d->city, addr)) {
      static const char* const kCountry[] = {"country", "iso_code", nullptr};
      static const char* const kRegisteredCountry[] = {"registered_country", "iso_code", nullptr};
      static const char* const kCity[] = {"city", "names", "en", nullptr};
      info.country = get_string(&*e, kCountry);
      if (info.country.empty()) info.country = get_string(&*e, kRegisteredCountry);
      info.city = get_string(&*e, kCity);
    }
  }
  if (d->isp) {
    if (auto e = find(*d->isp, addr)) {
      static const char* const kAsn[] = {"autonomous_system_number", nullptr};
      static const char* const kIsp[] = {"isp", nullptr};
      static const char* const kOrg[] = {"autonomous_system_organization", nullptr};
      info.asn = get_u32(&*e, kAsn);
      info.isp = get_string(&*e, kIsp);
      if (info.isp.empty()) info.isp = get_string(&*e, kOrg);
    }
  }
  if (d->asn && (info.asn == 0 || info.isp.empty())) {
    if (auto e = find(*d->asn, addr)) {
      static const char* const kAsn[] = {"autonomous_system_number", nullptr};
      static const char* const kOrg[] = {"autonomous_system_organization", nullptr};
      if (info.asn == 0) info.asn = get_u32(&*e, kAsn);
      if (info.isp.empty()) info.isp = get_string(&*e, kOrg);
    }
  }
  return info;
}

bool GeoIp::reload(std::string& error) {
  try {
    auto d = open_databases();
    std::lock_guard lock(mutex_);
    dbs_ = std::move(d);
    return true;
  } catch (const std::system_error& e) {
    error = e.what();
    return false;
  }
}

}  // namespace vantage::collector::enrich
