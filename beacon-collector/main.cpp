// vantage-collector: the beacon endpoint (browser reports, agent beacons, probe results).
// See docs/collector.md.
#include <CLI/CLI.hpp>
#include <iostream>
#include <map>

#include "beacon-collector/collector_app.hpp"
#include "beacon-collector/config.hpp"
#include "beacon-collector/headers.hpp"
#include "common/config_node.hpp"
#include "common/log.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "vantage-collector: ingests Reporting API, NEL, CSP and agent reports and probe "
      "results, enriches them with GeoIP/ASN and stores them"};
  std::string config_path, log_file;
  bool validate = false;
  app.set_version_flag("--version", vantage::version_line("vantage-collector"));
  app.add_option("-c,--config", config_path, "Collector configuration file (YAML)");
  app.add_flag("--validate", validate, "Check the configuration and exit (0 = valid, 2 = invalid)");
  app.add_option("--log-file", log_file, "Write logs to this file instead of stderr");

  vantage::collector::HeaderOptions hdr;
  auto* headers = app.add_subcommand(
      "headers", "Print the Reporting-Endpoints, Report-To, NEL and CSP header lines for a site");
  headers->add_option("--site", hdr.site, "The site's origin, e.g. https://shop.example.com")
      ->required();
  headers
      ->add_option("--collector", hdr.collector,
                   "The collector's base URL, e.g. https://collector.example.com")
      ->required();
  headers
      ->add_option("--nel-success-fraction", hdr.nel_success_fraction,
                   "Share of successful requests NEL reports (0-1)")
      ->check(CLI::Range(0.0, 1.0));
  headers
      ->add_option("--nel-failure-fraction", hdr.nel_failure_fraction,
                   "Share of failed requests NEL reports (0-1)")
      ->check(CLI::Range(0.0, 1.0));
  headers->add_option("--max-age", hdr.max_age_s, "Policy lifetime in seconds")
      ->check(CLI::Range(0, 365 * 86400));
  const std::map<std::string, vantage::collector::HeaderFormat> header_formats{
      {"raw", vantage::collector::HeaderFormat::raw},
      {"nginx", vantage::collector::HeaderFormat::nginx},
      {"apache", vantage::collector::HeaderFormat::apache},
      {"caddy", vantage::collector::HeaderFormat::caddy}};
  std::string header_format = "raw";
  headers
      ->add_option("--format", header_format,
                   "raw (header lines, the default) or a server snippet: nginx, apache, caddy")
      ->check(CLI::IsMember({"raw", "nginx", "apache", "caddy"}));
  headers->add_option("--csp", hdr.csp,
                      "The site's CSP without report-to/report-uri (default in the server "
                      "formats: default-src 'self', report-only)");
  headers->add_flag("--csp-enforce", hdr.csp_enforce,
                    "Send the CSP as Content-Security-Policy instead of -Report-Only");
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (headers->parsed()) {
    hdr.format = header_formats.at(header_format);
    try {
      std::cout << vantage::collector::render_headers(hdr);
      return 0;
    } catch (const std::invalid_argument& e) {
      std::cerr << "vantage-collector headers: " << e.what() << "\n";
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << "vantage-collector: --config is required (or use the headers subcommand)\n";
    return 2;
  }
  vantage::collector::CollectorConfig config;
  try {
    config = vantage::collector::load_collector_config(config_path);
  } catch (const vantage::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (validate) {
    std::cout << config_path << ": valid\n";
    return 0;
  }
  vantage::log::init(config.log_level, "collector", log_file);
  try {
    vantage::collector::CollectorApp collector(std::move(config));
    return collector.run();
  } catch (const std::exception& e) {
    vantage::log::error("collector.start_failed", {{"error", e.what()}});
    std::cerr << "vantage-collector: " << e.what() << "\n";
    return 1;
  }
}
