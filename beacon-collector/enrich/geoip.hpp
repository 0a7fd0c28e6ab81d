// GeoIP and ASN/ISP enrichment with libmaxminddb (MaxMind DB format,
// https://maxmind.github.io/MaxMind-DB/). Databases: GeoIP2/GeoLite2-City or -Country (country,
// city), GeoLite2-ASN (autonomous_system_number/_organization), GeoIP2-ISP (isp, plus the ASN).
//
// Thread-safe: lookups take a shared snapshot of the open databases; reload() opens the files
// again and swaps the snapshot (SIGHUP), so lookups never see a half-open database. A database
// that fails to open at start-up is a start-up error; one that fails on reload keeps the old one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include "beacon-collector/enrich/client_ip.hpp"

namespace vantage::collector::enrich {

// libmaxminddb's status codes (MMDB_SUCCESS, MMDB_CORRUPT_SEARCH_TREE_ERROR, …).
const std::error_category& mmdb_category() noexcept;

struct GeoInfo {
  std::string country;   // ISO 3166-1 alpha-2 ("GB"), empty when unknown
  std::string city;      // English name ("London"), empty when unknown
  std::uint32_t asn = 0; // 0 when unknown
  std::string isp;       // ISP name (ISP db) or AS organisation (ASN db)
};

class GeoIp {
 public:
  // Opens the databases whose paths are non-empty. Throws std::system_error (mmdb_category, or
  // errno for a missing file) naming the file on failure.
  GeoIp(std::string city_db, std::string asn_db, std::string isp_db);
  ~GeoIp();
  GeoIp(const GeoIp&) = delete;
  GeoIp& operator=(const GeoIp&) = delete;

  // Looks `addr` up in every open database. Missing data leaves fields empty; a corrupt record
  // is counted (lookup_errors()) and leaves them empty too. Never throws.
  GeoInfo lookup(const IpAddress& addr) const;
  // Re-opens every configured file. Returns false (and keeps the previous databases) when one
  // fails; `error` says which and why.
  bool reload(std::string& error);
  std::uint64_t lookup_errors() const noexcept;

 private:
  struct Databases;
  std::shared_ptr<const Databases> snapshot() const;
  std::shared_ptr<const Databases> open_databases() const;  // throws std::system_error
  std::string city_path_, asn_path_, isp_path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Databases> dbs_;
};

}  // namespace vantage::collector::enrich
