// Endpoint templates of report URLs (issue 14): the path segments that identify one object —
// a cart, an order, a user — are replaced with `:id`, so that the reports of one endpoint
// aggregate ("/api/cart/99812/total" and "/api/cart/7/total" are both "/api/cart/:id/total").
// The collector stores the template next to the raw URL (browser_reports.url_template,
// docs/collector.md#store); the analysis keys endpoints by it.
//
// A segment (between two '/') becomes `:id` when it is
//   - all digits:                                  "99812", "2024"
//   - a UUID (8-4-4-4-12 hex, any case):           "0b7c3a3e-5f7d-4c1e-9a55-1f0e8a2b6c41"
//   - hex of 8 or more characters with a digit:    "5f3a9c1e", "507f1f77bcf86cd799439011"
//   - a long random-looking token: 16 or more characters of [A-Za-z0-9_-] with letters and
//     digits, whose character classes (lower, upper, digit) change often or that is a quarter
//     digits or more ("aZ3kL9mQ2xP7vR1tQ8", "k3j9x0q2m8z7w1v4") — not words joined by '-'
//     ("summer-sale-shoes", "iPhone15ProMax").
// Anything else is kept: "v1", "api", "products", "shoes-42" (short), "index.html". Empty
// segments ("//") and a trailing '/' are kept as they are.
#pragma once

#include <string>
#include <string_view>

namespace vantage::collector::ingest {

// True when `segment` (one path segment, no '/') identifies an object (the rules above).
bool is_id_segment(std::string_view segment);

// The path template of `path` ("/api/cart/99812/total" -> "/api/cart/:id/total"). The path
// must not carry a query or fragment (they are removed before). Never fails: "" gives "".
std::string template_path(std::string_view path);

// `url` with its path templated: "https://shop.example.com/api/cart/99812/total" ->
// "https://shop.example.com/api/cart/:id/total". A URL without "://" is taken as a path; the
// scheme, user-info and host are kept as they are. Never fails.
std::string template_url(std::string_view url);

}  // namespace vantage::collector::ingest
