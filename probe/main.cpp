// vantage-probe: runs synthetic checks from one vantage point. See docs/configuration.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <iostream>

#include "common/config_node.hpp"
#include "common/log.hpp"
#include "common/rlimit.hpp"
#include "common/version.hpp"
#include "probe/checks/registry.hpp"
#include "probe/config.hpp"
#include "probe/probe_app.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vantage-probe: synthetic HTTP, DNS, TCP and TLS checks from one vantage point"};
  std::string config_path;
  bool once = false, validate = false, list = false;
  std::string output, log_level = "info", log_file;
  std::vector<std::string> only;
  app.set_version_flag("--version", vantage::version_line("vantage-probe"));
  app.add_option("-c,--config", config_path, "Probe configuration file (YAML)")->required();
  app.add_flag("--once", once,
               "Run every check once, print the results as JSON lines, exit 1 if any failed, 3 "
               "if results could not be delivered to the configured collector");
  app.add_option("-o,--output", output, "Write results as JSON lines to this file ('-' = stdout)");
  app.add_option("--check", only, "Run only these check ids (repeatable)");
  app.add_flag("--validate", validate, "Check the configuration and exit (0 = valid, 2 = invalid)");
  app.footer(
      "Exit status: 0 ok; 1 --once: a check failed; 2 invalid configuration or command line; 3 "
      "--once: results not delivered to the collector within the shutdown budget.\n"
      "Signals: SIGTERM/SIGINT stop gracefully (a second one stops now); SIGHUP reloads the "
      "configuration (docs/configuration.md, \"Reload\").");
  app.add_flag("--list", list, "Print the configured checks and exit");
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));
  app.add_option("--log-file", log_file, "Write logs to this file instead of stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  vantage::log::Level level = vantage::log::Level::info;
  vantage::log::parse_level(log_level, level);
  vantage::log::init(level, "probe", log_file);

  std::sort(only.begin(), only.end());
  only.erase(std::unique(only.begin(), only.end()), only.end());
  // The file, with --check applied: at start and at every reload (SIGHUP).
  auto load = [config_path, only] {
    vantage::probe::ProbeConfig config = vantage::probe::load_probe_config(config_path);
    if (!only.empty()) {
      std::vector<vantage::probe::CheckPtr> kept;
      for (const auto& id : only) {
        bool found = false;
        for (auto& c : config.checks) {
          if (c && c->id() == id) {
            kept.push_back(std::move(c));
            found = true;
            break;
          }
        }
        if (!found)
          throw vantage::ConfigError(config_path, 0, 0, "", "--check " + id + ": no such check");
      }
      config.checks = std::move(kept);
    }
    return config;
  };
  vantage::probe::ProbeConfig config;
  try {
    config = load();
  } catch (const vantage::ConfigError& e) {
    std::cerr << "vantage-probe: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "vantage-probe: cannot start: " << e.what() << "\n";
    return 2;
  }
  if (validate) {
    std::cout << config_path << ": OK (" << config.checks.size() << " checks)\n";
    return 0;
  }
  if (list) {
    for (const auto& c : config.checks) {
      std::cout << c->id() << "\t" << c->common().kind << "\t" << c->describe() << "\n";
    }
    return 0;
  }
  try {
    vantage::probe::AppOptions opts;
    opts.once = once;
    opts.reload_config = load;
    if (!output.empty()) opts.output = output;
    {
      // Every check run, BMP session and scrape costs a descriptor: a soft limit of 1024 under a
      // higher hard limit is only a default, not a decision.
      const auto files = vantage::raise_open_file_limit();
      auto clamp = [](std::uint64_t v) {
        return static_cast<std::int64_t>(std::min<std::uint64_t>(v, INT64_MAX));
      };
      // A daemon says so at start; a --once run keeps stderr for its results' problems.
      vantage::log::write(once ? vantage::log::Level::debug : vantage::log::Level::info,
                          "probe.open_file_limit",
                          {{"soft", clamp(files.soft)},
                           {"hard", clamp(files.hard)},
                           {"soft_at_start", clamp(files.soft_before)}});
    }
    vantage::probe::ProbeApp probe(std::move(config), opts);
    return probe.run();
  } catch (const std::exception& e) {
    std::cerr << "vantage-probe: " << e.what() << "\n";
    return 1;
  }
}
