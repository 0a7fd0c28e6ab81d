"""Every failure type the probe promises, against real servers (nginx, unbound, openssl certs):
the outcome type AND the failing phase, plus a success with every phase filled."""
import unittest

from harness import IntegrationTest, run_once


class FailureTypes(IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p, r, ca = cls.ports, cls.resolver, cls.ca

        def http(check_id, url, **kw):
            c = {"id": check_id, "kind": "http", "url": url, "resolvers": [r], "timeout": "4s",
                 "tls": {"ca_file": ca}}
            c.update(kw)
            return c

        checks = [
            http("ok-https", f"https://shop.test:{p['https_valid']}/",
                 expect={"status": [200], "body_matches": "Welcome", "cert_expires_after": "7d",
                         "headers": {"content-type": {"matches": "^text/html"}}}),
            http("ok-http", f"http://shop.test:{p['http']}/api/products",
                 expect={"json": {"/items/0/sku": "BOOK-1", "$.count": 1}}),
            http("nxdomain", f"http://nx.test:{p['http']}/"),
            http("servfail", f"http://servfail.test:{p['http']}/"),
            http("resolver-silent", f"http://dead.test:{p['http']}/", timeout="1500ms"),
            http("slow-dns-timeout", f"http://slow.test:{p['http']}/", timeout="700ms"),
            http("slow-dns-ok", f"http://slow.test:{p['http']}/", timeout="8s"),
            {"id": "resolver-down", "kind": "http", "url": f"http://shop.test:{p['http']}/",
             "resolvers": [f"127.0.0.1:{p['closed_dns']}"], "timeout": "3s"},
            http("refused", f"http://shop.test:{p['closed']}/"),
            http("connect-timeout", f"http://shop.test:{p['blackhole']}/", timeout="1s"),
            http("cert-expired", f"https://shop.test:{p['https_expired']}/"),
            http("cert-unknown-ca", f"https://shop.test:{p['https_selfsigned']}/"),
            http("cert-wrong-name", f"https://shop.test:{p['https_wrongname']}/"),
            http("status-500", f"https://shop.test:{p['https_valid']}/status/500"),
            http("status-404", f"http://shop.test:{p['http']}/missing"),
            http("body-assertion", f"http://shop.test:{p['http']}/", expect={"body_matches": "Goodbye"}),
            http("json-assertion", f"http://shop.test:{p['http']}/api/products",
                 expect={"json": {"$.items[0].sku": "BOOK-2"}}),
            http("header-assertion", f"http://shop.test:{p['http']}/",
                 expect={"headers": {"x-frame-options": {"exists": True}}}),
            http("slow-backend-timeout", f"http://shop.test:{p['http']}/slow", timeout="100ms"),
            http("cert-expiry-threshold", f"https://shop.test:{p['https_valid']}/",
                 expect={"cert_expires_after": "60d"}),
            {"id": "dns-ok", "kind": "dns", "name": "shop.test", "resolvers": [r],
             "expect": {"answers": ["127.0.0.1"], "min_ttl": "60s"}},
            {"id": "dns-mx", "kind": "dns", "name": "mail.shop.test", "type": "MX", "resolvers": [r],
             "expect": {"answers": ["10 mx.shop.test."]}},
            {"id": "dns-nxdomain", "kind": "dns", "name": "nx.test", "resolvers": [r]},
            {"id": "dns-servfail", "kind": "dns", "name": "servfail.test", "resolvers": [r]},
            {"id": "dns-hijack", "kind": "dns", "name": "hijacked.test", "resolvers": [r],
             "expect": {"answers_within": ["203.0.113.0/24"]}},
            {"id": "dns-silent", "kind": "dns", "name": "dead.test", "resolvers": [r], "timeout": "1s"},
            {"id": "tls-ok", "kind": "tls", "host": "127.0.0.1", "server_name": "shop.test",
             "port": p["https_valid"], "tls": {"ca_file": ca},
             "expect": {"cert_expires_after": "7d", "version": ["TLSv1.2", "TLSv1.3"]}},
            {"id": "tls-expired", "kind": "tls", "host": "shop.test", "port": p["https_expired"],
             "resolvers": [r], "tls": {"ca_file": ca}},
            {"id": "tcp-ok", "kind": "tcp", "host": "shop.test", "port": p["http"], "resolvers": [r],
             "query_response": [{"send": "HEAD / HTTP/1.0\r\n\r\n"}, {"expect": "^HTTP/1\\.1 200"}]},
            {"id": "tcp-refused", "kind": "tcp", "host": "127.0.0.1", "port": p["closed"]},
        ]
        cls.status, cls.results, cls.stderr = run_once(checks)

    def result(self, check_id):
        self.assertIn(check_id, self.results, f"no result for {check_id}; stderr: {self.stderr}")
        return self.results[check_id][0]

    def assertOutcome(self, check_id, type_, failed_at=None, status_code=None):
        r = self.result(check_id)
        o = r["outcome"]
        self.assertEqual(o["type"], type_, f"{check_id}: {o}")
        if failed_at:
            self.assertEqual(o.get("failed_at"), failed_at, f"{check_id}: {o}")
        if status_code:
            self.assertEqual(o.get("status_code"), status_code, f"{check_id}: {o}")
        return r

    def test_exit_status_reports_failures(self):
        self.assertEqual(self.status, 1)

    def test_https_success_fills_every_phase(self):
        r = self.assertOutcome("ok-https", "ok")
        phases = r["phases_ms"]
        for phase in ("dns", "connect", "tls", "ttfb", "transfer", "total"):
            self.assertIn(phase, phases, phases)
            self.assertGreaterEqual(phases[phase], 0)
        self.assertGreater(phases["tls"], 0)
        self.assertGreaterEqual(phases["total"], phases["connect"] + phases["tls"] + phases["ttfb"])
        self.assertEqual(r["target"]["server_ip"], "127.0.0.1")
        self.assertEqual(r["target"]["resolver"], self.resolver)
        self.assertEqual(r["http"]["status_code"], 200)
        self.assertIn(r["tls"]["version"], ("TLSv1.2", "TLSv1.3"))
        self.assertIn("Vantage Test CA", r["tls"]["issuer"])
        self.assertIn("shop.test", r["tls"]["dns_names"])
        self.assertTrue(r["tls"]["earliest_expiry"].endswith("Z"))
        self.assertEqual(len(r["trace_id"]), 32)
        self.assertEqual(r["vantage"]["asn"], 64500)

    def test_http_success_with_json_assertions(self):
        r = self.assertOutcome("ok-http", "ok")
        self.assertNotIn("tls", r["phases_ms"])
        self.assertTrue(all(a["passed"] for a in r["assertions"]))

    def test_nxdomain_is_dns_name_not_resolved(self):
        self.assertOutcome("nxdomain", "dns.name_not_resolved", "dns")

    def test_servfail_is_dns_failed(self):
        self.assertOutcome("servfail", "dns.failed", "dns")

    def test_silent_upstream_is_dns_unreachable(self):
        self.assertOutcome("resolver-silent", "dns.unreachable", "dns")

    def test_slow_name_past_the_deadline_is_dns_unreachable(self):
        r = self.assertOutcome("slow-dns-timeout", "dns.unreachable", "dns")
        self.assertGreaterEqual(r["phases_ms"]["dns"], 600)

    def test_slow_name_within_the_deadline_succeeds_with_the_dns_time(self):
        r = self.assertOutcome("slow-dns-ok", "ok")
        self.assertGreaterEqual(r["phases_ms"]["dns"], 1400)

    def test_resolver_refusing_connections_is_dns_unreachable(self):
        self.assertOutcome("resolver-down", "dns.unreachable", "dns")

    def test_closed_port_is_tcp_refused(self):
        r = self.assertOutcome("refused", "tcp.refused", "connect")
        self.assertEqual(r["outcome"]["phase"], "connection")

    def test_full_accept_queue_is_tcp_timed_out(self):
        r = self.assertOutcome("connect-timeout", "tcp.timed_out", "connect")
        self.assertGreaterEqual(r["phases_ms"]["connect"], 900)

    def test_expired_certificate_is_tls_cert_date_invalid(self):
        r = self.assertOutcome("cert-expired", "tls.cert.date_invalid", "tls")
        self.assertTrue(r["tls"]["earliest_expiry"].startswith("2020-02-01"))
        # The TCP connection was made before the handshake failed: both phases are there.
        self.assertIn("connect", r["phases_ms"])
        self.assertIn("tls", r["phases_ms"])
        self.assertLess(r["phases_ms"]["connect"], r["phases_ms"]["total"])

    def test_unknown_ca_is_tls_cert_authority_invalid(self):
        self.assertOutcome("cert-unknown-ca", "tls.cert.authority_invalid", "tls")

    def test_wrong_name_is_tls_cert_name_invalid(self):
        self.assertOutcome("cert-wrong-name", "tls.cert.name_invalid", "tls")

    def test_5xx_is_http_error_with_status(self):
        self.assertOutcome("status-500", "http.error", "assertion", 500)

    def test_4xx_is_http_error_with_status(self):
        self.assertOutcome("status-404", "http.error", "assertion", 404)

    def test_body_json_and_header_assertions_are_named(self):
        self.assertEqual(self.assertOutcome("body-assertion", "assertion.failed", "assertion")["outcome"]["assertion"], "body_matches")
        self.assertEqual(self.assertOutcome("json-assertion", "assertion.failed", "assertion")["outcome"]["assertion"], "json:$.items[0].sku")
        self.assertEqual(self.assertOutcome("header-assertion", "assertion.failed", "assertion")["outcome"]["assertion"], "header:x-frame-options")

    def test_server_too_slow_to_answer_is_timeout_waiting_for_first_byte(self):
        self.assertOutcome("slow-backend-timeout", "timeout", "ttfb")

    def test_certificate_expiring_too_soon_fails_its_threshold(self):
        r = self.assertOutcome("cert-expiry-threshold", "assertion.failed", "assertion")
        self.assertEqual(r["outcome"]["assertion"], "cert_expires_after")

    def test_dns_check_reports_answers_and_ttl(self):
        r = self.assertOutcome("dns-ok", "ok")
        self.assertEqual(r["dns"]["rcode"], "NOERROR")
        self.assertEqual(r["dns"]["answers"][0]["data"], "127.0.0.1")
        self.assertEqual(r["dns"]["answers"][0]["ttl"], 300)
        self.assertOutcome("dns-mx", "ok")

    def test_dns_check_nxdomain_and_servfail(self):
        self.assertEqual(self.assertOutcome("dns-nxdomain", "dns.name_not_resolved", "dns")["dns"]["rcode"], "NXDOMAIN")
        self.assertEqual(self.assertOutcome("dns-servfail", "dns.failed", "dns")["dns"]["rcode"], "SERVFAIL")
        self.assertOutcome("dns-silent", "dns.unreachable", "dns")

    def test_dns_answer_outside_the_expected_prefix_is_flagged(self):
        r = self.assertOutcome("dns-hijack", "assertion.failed", "assertion")
        self.assertEqual(r["outcome"]["assertion"], "answers_within")
        self.assertIn("198.51.100.66", r["outcome"]["detail"])

    def test_tls_check_reports_facts_and_expiry(self):
        r = self.assertOutcome("tls-ok", "ok")
        self.assertIn("tls", r["phases_ms"])
        self.assertEqual(r["tls"]["chain_length"], 1)
        self.assertOutcome("tls-expired", "tls.cert.date_invalid", "tls")

    def test_tcp_check_runs_its_script(self):
        r = self.assertOutcome("tcp-ok", "ok")
        self.assertGreater(r["tcp"]["bytes_received"], 0)
        self.assertOutcome("tcp-refused", "tcp.refused", "connect")


if __name__ == "__main__":
    unittest.main()
