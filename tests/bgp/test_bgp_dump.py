"""`vantage bgp dump`: byte-identical to bgpdump's golden `-m` outputs, and robust on damaged
input (every file of tests/data/bgp parses without a crash; damage is reported on stderr and the
records before and after it are still printed; exit status 3 when anything was damaged), and
no silent loss: real files cut and corrupted many times over (seeded), through dump and scan."""
import bz2
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "bgp")
BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(HERE, "..", "..", "build", "dev"))
VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")


def dump(*paths):
    p = subprocess.run([VANTAGE, "bgp", "dump", *paths], capture_output=True, timeout=300)
    return p.returncode, p.stdout, p.stderr.decode()


class GoldenOutputs(unittest.TestCase):
    def test_output_is_byte_identical_to_bgpdumps_golden_files(self):
        with open(os.path.join(DATA, "bgpdump", "expected.sha256")) as f:
            expected = [line.split() for line in f if line.strip()]
        self.assertEqual(len(expected), 10)
        # One of bgpdump's inputs is damaged on purpose: its last NLRI runs past the UPDATE.
        damaged = {"updates.nlri_mask_trailing_bits.gz"}
        for digest, lines, name in expected:
            with self.subTest(file=name):
                rc, out, err = dump(os.path.join(DATA, "bgpdump", name))
                if name in damaged:
                    self.assertEqual(rc, 3, err)
                    self.assertIn("offset 0: BGP4MP UPDATE: NLRI: prefix runs past the end", err)
                else:
                    self.assertEqual((rc, err), (0, ""))
                self.assertEqual(out.count(b"\n"), int(lines))
                self.assertEqual(hashlib.sha256(out).hexdigest(), digest)


class DamagedInput(unittest.TestCase):
    def test_every_shared_mrt_file_parses_without_a_crash(self):
        files = []
        for sub in ("bgpdump", "damaged", "lab", "mrtparse"):
            d = os.path.join(DATA, sub)
            files += [os.path.join(d, n) for n in sorted(os.listdir(d)) if not n.endswith((".sha256", ".rst"))]
        self.assertGreater(len(files), 30)
        for path in files:
            with self.subTest(file=os.path.relpath(path, DATA)):
                rc, out, err = dump(path)
                self.assertNotIn("Sanitizer", err)
                # Exit status 3 exactly when damage is reported, with a summary line last.
                self.assertEqual(rc, 3 if err else 0, err)
                if err:
                    self.assertRegex(err.splitlines()[-1], r"^vantage bgp dump: .*: (\d+ damaged records? skipped or "
                                                           r"read in part|the compressed stream is damaged)")

    def test_a_cut_bzip2_rib_keeps_every_complete_record_and_says_it_was_cut(self):
        path = os.path.join(DATA, "damaged", "rib.20140523.0600_firstMB.bz2")
        rc, out, err = dump(path)
        self.assertEqual(rc, 3)
        self.assertEqual(err.splitlines(), [
            f"vantage bgp dump: {path}: bzip2 stream truncated at compressed byte 1048576",
            f"vantage bgp dump: {path}: offset 15273283: truncated record: header says 1985 bytes, 1255 left",
            f"vantage bgp dump: {path}: 1 damaged record skipped or read in part (1267 bytes of the stream "
            "skipped); the compressed stream is damaged"])
        # Same count as bgpdump 1.6.2 on this file (../shared/data/bgp/PROVENANCE.md).
        self.assertEqual(out.count(b"\n"), 270005)

    def test_rib_records_without_a_peer_index_table_are_reported(self):
        rc, out, err = dump(os.path.join(DATA, "damaged", "bview.20140112.1600_3samples.bz2"))
        self.assertEqual((rc, out), (3, b""))
        self.assertEqual(err.count("RIB record before any PEER_INDEX_TABLE"), 3)
        self.assertIn(": 3 damaged records skipped or read in part\n", err)

    def test_zebras_truncated_records_are_reported_and_the_rest_is_read(self):
        rc, out, err = dump(os.path.join(DATA, "damaged", "rrc01.updates.20001104.0124.gz"))
        self.assertEqual(rc, 3)
        self.assertIn("8-byte record (Zebra bug)", err)
        self.assertEqual(out.count(b"\n"), 883)  # bgpdump 1.6.2 prints the same 883 lines

    def test_records_before_and_after_a_damaged_record_are_still_read(self):
        with gzip.open(os.path.join(DATA, "bgpdump", "updates.20100722.2015.gz")) as f:
            raw = f.read()
        # Walk the MRT headers; damage record 100's UPDATE (attribute length far past its end)
        # and cut the last record in half.
        offsets, pos = [], 0
        while pos + 12 <= len(raw):
            offsets.append(pos)
            pos += 12 + struct.unpack(">I", raw[pos + 8:pos + 12])[0]
        self.assertEqual(pos, len(raw))
        work = tempfile.mkdtemp(prefix="vantage-bgp-test-")
        self.addCleanup(shutil.rmtree, work, True)
        damaged = bytearray(raw)
        def update_at(o):
            """Offset of the UPDATE body in a BGP4MP MESSAGE(_AS4) record, or None."""
            if struct.unpack(">HH", raw[o + 4:o + 8]) not in ((16, 1), (16, 4)):
                return None
            as_len = 2 if struct.unpack(">H", raw[o + 6:o + 8])[0] == 1 else 4
            afi = struct.unpack(">H", raw[o + 12 + 2 * as_len + 2:o + 12 + 2 * as_len + 4])[0]
            message = o + 12 + 2 * as_len + 4 + (32 if afi == 2 else 8)
            return message + 19 if raw[message + 18] == 2 else None
        target = next(o for o in offsets[100:] if update_at(o))
        update = update_at(target)
        wlen = struct.unpack(">H", raw[update:update + 2])[0]
        damaged[update + 2 + wlen:update + 4 + wlen] = b"\xff\xf0"  # attribute block length 65520
        cut = offsets[-1] + (len(raw) - offsets[-1]) // 2
        bad = os.path.join(work, "damaged.mrt")
        with open(bad, "wb") as f:
            f.write(bytes(damaged[:cut]))
        def lines_of(data):
            path = os.path.join(work, "part.mrt")
            with open(path, "wb") as f:
                f.write(data)
            return dump(path)[1].splitlines()
        before = lines_of(raw[:target])                                         # records before the damage
        after = lines_of(raw[offsets[offsets.index(target) + 1]:offsets[-1]])   # after it, up to the cut one
        rc, bad_out, err = dump(bad)
        self.assertEqual(rc, 3)
        self.assertIn(f"offset {target}: BGP4MP UPDATE", err)
        self.assertIn(f"offset {offsets[-1]}: truncated record: header says", err)
        bad_lines = bad_out.splitlines()
        self.assertGreater(len(before), 50)
        self.assertGreater(len(after), 1000)
        self.assertEqual(bad_lines[:len(before)], before)
        self.assertEqual(bad_lines[-len(after):], after)

# --- No silent loss: cut and corrupted real files through dump and scan ---------------------------

# A one-record MRT file put between the files of one `dump` run: its line splits the output per
# file (the formatter starts afresh on every file, so N files in one run print what N runs do).
MARKER_RECORD = (struct.pack(">IHHI", 1, 16, 0, 20) + struct.pack(">HHHH", 64511, 64511, 0, 1) +
                 bytes([192, 0, 2, 254, 192, 0, 2, 253]) + struct.pack(">HH", 1, 2))
MARKER_LINE = b"BGP4MP|1|STATE|192.0.2.254|64511|1|2"
# Every route is a more-specific from an origin that is not allowed: scan's alerts follow the records.
EVERYTHING = "0.0.0.0/0:\n  asn: [64496]\n::/0:\n  asn: [64496]\n"
POSITION = re.compile(r"(offset|compressed byte) \d+")
SUMMARY = re.compile(r"(\d+ damaged records? skipped or read in part|the compressed stream is damaged)")


def record_starts(raw):
    """The offsets where the records of an MRT stream start, and its end."""
    starts, pos = [0], 0
    while pos + 12 <= len(raw):
        pos += 12 + struct.unpack(">I", raw[pos + 8:pos + 12])[0]
        starts.append(pos)
    assert pos == len(raw), "not a complete MRT stream"
    return starts


def readable(blob):
    """What a reader can decompress from a possibly cut file: as far as zlib or libbz2 get (Python
    uses the same libraries), member after member; plain bytes as they are."""
    for magic, new in ((b"\x1f\x8b", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)), (b"BZh", bz2.BZ2Decompressor)):
        if blob.startswith(magic):
            out = b""
            while blob.startswith(magic):
                d = new()
                out += d.decompress(blob)
                if not d.eof:
                    break
                blob = d.unused_data
            return out
    return blob


class Runner:
    """Runs dump and scan over many files at once and splits what they print per file."""

    def __init__(self, work):
        self.work = work
        self.marker = os.path.join(work, "marker.mrt")
        with open(self.marker, "wb") as f:
            f.write(MARKER_RECORD)
        self.prefixes = os.path.join(work, "everything.yml")
        with open(self.prefixes, "w") as f:
            f.write(EVERYTHING)
        self.count = 0

    def write(self, data, suffix=""):
        self.count += 1
        path = os.path.join(self.work, f"f{self.count}{suffix}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    @staticmethod
    def warnings(command, err, paths):
        """Each file's stderr lines, without the "vantage bgp COMMAND: FILE: " prefix."""
        out = {p: [] for p in paths}
        for line in err.splitlines():
            for p in paths:
                prefix = f"vantage bgp {command}: {p}: "
                if line.startswith(prefix):
                    out[p].append(line[len(prefix):])
                    break
        return [out[p] for p in paths]

    def dump(self, paths):
        """(exit status, each file's output lines, each file's warnings)."""
        argv = []
        for p in paths:
            argv += [p, self.marker]
        p = subprocess.run([VANTAGE, "bgp", "dump", *argv], capture_output=True, timeout=300)
        parts = p.stdout.split(MARKER_LINE + b"\n")
        assert len(parts) == len(paths) + 1 and parts[-1] == b"", "marker lines missing"
        return p.returncode, [part.splitlines() for part in parts[:-1]], self.warnings("dump", p.stderr.decode(), paths)

    def scan(self, paths):
        """(exit status, alert lines, the summary object, each file's warnings)."""
        p = subprocess.run([VANTAGE, "bgp", "scan", *paths, "--prefixes", self.prefixes, "--json"],
                           capture_output=True, timeout=300)
        lines = p.stdout.decode().splitlines()
        summary = json.loads(lines[-1])
        assert summary["kind"] == "scan_summary"
        return p.returncode, lines[:-1], summary, self.warnings("scan", p.stderr.decode(), paths)


def batches(items, size=50):
    return [items[i:i + size] for i in range(0, len(items), size)]


class NoSilentLoss(unittest.TestCase):
    """Real MRT files — a gzip TABLE_DUMP_V2 ADD-PATH RIB, a bzip2 BGP4MP_ET update file and a plain
    BGP4MP file — each also recompressed the other two ways, plus one as two gzip members, are cut
    at 200 random places each (seeded: the same cuts every run) and corrupted, and run through
    `dump` and `scan`. Each run either outputs every complete record and reports nothing (only
    possible when the cut leaves a complete file: a plain file cut on a record boundary, or two
    gzip members cut between them), or names the damage with its position on stderr, ends with
    the file's summary and exits 3; a cut never loses a complete record before it."""

    SEED = 5
    CUTS = 200
    SOURCES = {  # name: file in tests/data/bgp
        "add_path": "bgpdump/bview.ipv4_unicast_add_path.gz",
        "local_only": "damaged/local_only.updates.bz2",
        "quagga": "mrtparse/quagga_bgp",
    }

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vantage-bgp-damage-")
        cls.run_ = Runner(cls.dir)
        cls.sources = {}   # name -> (raw bytes, record starts, dump lines of the first K records for every K)
        cls.variants = []  # (label, source name, file bytes, cut positions that leave a complete file)
        for name, rel in cls.SOURCES.items():
            with open(os.path.join(DATA, rel), "rb") as f:
                stored = f.read()
            raw = readable(stored)
            starts = record_starts(raw)
            forms = {"plain": raw, "gzip": gzip.compress(raw, mtime=0), "bzip2": bz2.compress(raw)}
            kind = "gzip" if stored[:2] == b"\x1f\x8b" else "bzip2" if stored[:3] == b"BZh" else "plain"
            forms[kind] = stored  # the real file as it is published
            for form, blob in forms.items():
                cls.variants.append((f"{name}.{form}", name, blob, set(starts) if form == "plain" else set()))
            cls.sources[name] = (raw, starts, None)
        # `cat a.gz b.gz`: two members, split at a record boundary in the middle.
        raw, starts, _ = cls.sources["quagga"]
        middle = starts[len(starts) // 2]
        first = gzip.compress(raw[:middle], mtime=0)
        cls.variants.append(("quagga.gzip+gzip", "quagga", first + gzip.compress(raw[middle:], mtime=0), {len(first)}))
        # What dump prints for the first K records of each source, every K; and those files, for scan.
        cls.prefix_files = {}
        for name, (raw, starts, _) in cls.sources.items():
            paths = [cls.run_.write(raw[:end]) for end in starts]
            cls.prefix_files[name] = paths
            rc, outs, errs = cls.run_.dump(paths)
            assert rc == 0 and not any(errs), f"{name}: a prefix of the sound file reports damage"
            cls.sources[name] = (raw, starts, outs)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        # Each test its own seeded generator: the same cuts whether it runs alone or with the others.
        self.rng = random.Random(f"{self.SEED} {self._testMethodName}")

    def complete_records(self, name, blob):
        raw, starts, _ = self.sources[name]
        got = len(readable(blob))
        return max(k for k, end in enumerate(starts) if end <= got)

    def check_warnings(self, what, warnings, damaged, problems):
        if not damaged:
            if warnings:
                problems.append(f"{what}: reported damage on a complete file: {warnings}")
            return
        if not any(POSITION.search(w) for w in warnings[:-1]) or not warnings or not SUMMARY.search(warnings[-1]):
            problems.append(f"{what}: {'silent' if not warnings else 'no position or summary'}: {warnings}")

    def test_every_cut_keeps_the_complete_records_and_names_the_damage(self):
        problems, cuts = [], []
        for label, name, blob, complete in self.variants:
            positions = [self.rng.randrange(1, len(blob)) for _ in range(self.CUTS)]
            if label.endswith(".plain"):  # and some exactly on record boundaries: complete files
                positions += self.rng.sample(sorted(complete - {0, len(blob)}), 10)
            for at in positions:
                cuts.append((f"{label} cut at {at}", name, blob[:at], at in complete))
        for batch in batches(cuts):
            paths = [self.run_.write(data) for _, _, data, _ in batch]
            expected = [self.complete_records(name, data) for _, name, data, _ in batch]
            rc, outs, warnings = self.run_.dump(paths)
            if rc != (3 if not all(c[3] for c in batch) else 0):
                problems.append(f"dump of {batch[0][0]} …: exit status {rc}")
            for (what, name, data, complete), k, out, w in zip(batch, expected, outs, warnings):
                if out != self.sources[name][2][k]:
                    problems.append(f"dump {what}: {len(out)} lines, expected the {len(self.sources[name][2][k])} "
                                    f"of the {k} complete records")
                self.check_warnings(f"dump {what}", w, not complete, problems)
            # scan: the same alerts and events as a scan of the complete records alone, and the
            # same warnings as dump.
            rc_scan, alerts, summary, scan_warnings = self.run_.scan(paths)
            _, ref_alerts, ref_summary, _ = self.run_.scan([self.prefix_files[c[1]][k] for c, k in zip(batch, expected)])
            if (rc_scan, summary["exit_status"]) != (rc, rc):
                problems.append(f"scan of {batch[0][0]} …: exit status {rc_scan}, summary {summary['exit_status']}, "
                                f"dump's {rc}")
            if alerts != ref_alerts or summary["events"] != ref_summary["events"]:
                problems.append(f"scan of {batch[0][0]} …: {summary['events']} events, {len(alerts)} alerts; the "
                                f"complete records give {ref_summary['events']}, {len(ref_alerts)}")
            for c, w, sw in zip(batch, warnings, scan_warnings):
                if w != sw:
                    problems.append(f"scan {c[0]}: warnings {sw}, dump's {w}")
        self.assertGreater(len(cuts), 2000)
        self.assertEqual(problems[:20], [], f"{len(problems)} of {len(cuts)} cuts")

    def test_a_corrupted_compressed_stream_is_reported_or_changes_nothing(self):
        # Any byte of a gzip or bzip2 file XORed with a random mask: either the output is the
        # sound file's, in silence (a header's time stamp, padding bits), or the damage is named.
        problems, runs = [], []
        for label, name, blob, _ in self.variants:
            if label.endswith(".plain"):
                continue
            for _ in range(30):
                at = self.rng.randrange(len(blob))
                data = bytearray(blob)
                data[at] ^= self.rng.randrange(1, 256)
                runs.append((f"{label} byte {at} flipped", name, bytes(data)))
        for batch in batches(runs):
            paths = [self.run_.write(data) for _, _, data in batch]
            rc, outs, warnings = self.run_.dump(paths)
            for (what, name, _), out, w in zip(batch, outs, warnings):
                full = self.sources[name][2][-1]
                if not w and out != full:
                    problems.append(f"dump {what}: output changed in silence")
                self.check_warnings(f"dump {what}", w, bool(w), problems)
            if rc != (3 if any(warnings) else 0):
                problems.append(f"dump of {batch[0][0]} …: exit status {rc}")
            # scan: damage where dump finds it, in dump's words (the route-event decoder may
            # add its own about the garbage a corrupt block decompresses to).
            rc_scan, _, summary, scan_warnings = self.run_.scan(paths)
            if (rc_scan, summary["exit_status"]) != (rc, rc):
                problems.append(f"scan of {batch[0][0]} …: exit status {rc_scan}, dump's {rc}")
            for (what, *_), w, sw in zip(batch, warnings, scan_warnings):
                if bool(w) != bool(sw) or not set(w[:-1]) <= set(sw):
                    problems.append(f"scan {what}: warnings {sw}, dump's {w}")
        self.assertGreater(sum(1 for _ in runs), 200)
        self.assertEqual(problems[:20], [], f"{len(problems)} of {len(runs)} corruptions")

    def test_a_damaged_record_header_or_bgp_header_loses_that_record_only(self):
        # In the plain files: a byte of a record's MRT length, the high byte of its type or
        # subtype, of a BGP4MP message's AFI, or a byte of its BGP marker. The reader skips to the
        # next record (or the decoders skip the one record): every other record is output.
        problems, runs = [], []
        for name, (raw, starts, outs) in self.sources.items():
            targets = []
            for i, start in enumerate(starts[:-1]):
                ts, type_, subtype, length = struct.unpack(">IHHI", raw[start:start + 12])
                if type_ == 13 and subtype == 1:
                    continue  # the PEER_INDEX_TABLE: the RIB records after it need it
                fields = [("length", start + 8 + b) for b in range(4)] + [("type", start + 4), ("subtype", start + 6)]
                body = start + 12 + (4 if type_ == 17 else 0)
                if type_ in (16, 17) and subtype in (1, 4):
                    as_len = 4 if subtype == 4 else 2
                    afi = struct.unpack(">H", raw[body + 2 * as_len + 2:body + 2 * as_len + 4])[0]
                    head = body + 2 * as_len + 4 + (32 if afi == 2 else 8)
                    fields += [("afi", body + 2 * as_len + 2), ("marker", head + self.rng.randrange(16))]
                targets += [(i, field, at) for field, at in fields]
            for i, field, at in self.rng.sample(targets, 40):
                data = bytearray(raw)
                data[at] ^= self.rng.randrange(1, 256)
                runs.append((f"{name}: record {i} at offset {starts[i]}: {field} byte {at} flipped", name, i, field,
                             bytes(data)))
        for batch in batches(runs):
            paths = [self.run_.write(data) for *_, data in batch]
            rc, outs, warnings = self.run_.dump(paths)
            if rc != 3:
                problems.append(f"dump of {batch[0][0]} …: exit status {rc}")
            for (what, name, i, field, _), out, w in zip(batch, outs, warnings):
                by_k = self.sources[name][2]
                before, after = by_k[i], by_k[-1][len(by_k[i + 1]):]
                kept = out[:len(before)] == before and out[len(out) - len(after):] == after and \
                    len(out) >= len(before) + len(after)
                # The length's record may be read in part; the others are skipped whole.
                if not kept or (field != "length" and out != before + after):
                    problems.append(f"dump {what}: {len(out)} lines, expected {len(before)} + "
                                    f"{'its own + ' if field == 'length' else ''}{len(after)}: {w}")
                self.check_warnings(f"dump {what}", w, True, problems)
            # scan reads no events from a record skipped for its MRT type, subtype or AFI (the
            # route-event decoder reads past a bad marker), and warns as dump does.
            exact = [r for r in batch if r[3] in ("type", "subtype", "afi")]
            _, alerts, summary, scan_warnings = self.run_.scan([self.run_.write(r[4]) for r in exact])
            without = [self.run_.write(self.sources[n][0][:self.sources[n][1][i]] + self.sources[n][0][self.sources[n][1][i + 1]:])
                       for _, n, i, _, _ in exact]
            _, ref_alerts, ref_summary, _ = self.run_.scan(without)
            if alerts != ref_alerts or summary["events"] != ref_summary["events"]:
                problems.append(f"scan of {exact[0][0]} …: {summary['events']} events, the records without the "
                                f"damaged ones give {ref_summary['events']}")
            _, _, _, scan_warnings = self.run_.scan(paths)
            for r, w, sw in zip(batch, warnings, scan_warnings):
                if not set(w[:-1]) <= set(sw):
                    problems.append(f"scan {r[0]}: warnings {sw}, dump's {w}")
        self.assertEqual(len(runs), 120)
        self.assertEqual(problems[:20], [], f"{len(problems)} of {len(runs)} corruptions")

    def test_the_exit_status_of_each_file_alone(self):
        # Batches above prove the statuses per run of many files; here one file per run.
        raw, starts, outs = self.sources["quagga"]
        packed = gzip.compress(raw, mtime=0)
        for data, status in ((raw, 0), (raw[:starts[10]], 0), (raw[:starts[10] + 5], 3), (packed[:len(packed) // 2], 3)):
            path = self.run_.write(data)
            for command in (["dump"], ["scan", "--prefixes", self.run_.prefixes]):
                with self.subTest(command=command[0], size=len(data)):
                    p = subprocess.run([VANTAGE, "bgp", *command[:1], path, *command[1:]], capture_output=True)
                    self.assertEqual(p.returncode, status, p.stderr)
                    # (scan's count of ignored routes is not about the file)
                    reported = Runner.warnings(command[0], p.stderr.decode(), [path])[0]
                    self.assertEqual(reported == [], status == 0, reported)

class DamageMessages(unittest.TestCase):
    """The exact words for each kind of damage, on a real plain BGP4MP file (quagga) and its
    gzip and bzip2 forms: where it is, what was skipped, how reading went on."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vantage-bgp-messages-")
        with open(os.path.join(DATA, "mrtparse", "quagga_bgp"), "rb") as f:
            cls.raw = f.read()
        cls.starts = record_starts(cls.raw)
        cls.full = cls.dump_of(cls.raw)[1].splitlines()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    @classmethod
    def dump_of(cls, data, name="input"):
        path = os.path.join(cls.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        rc, out, err = dump(path)
        prefix = f"vantage bgp dump: {path}: "
        assert all(line.startswith(prefix) for line in err.splitlines()), err
        return rc, out, [line[len(prefix):] for line in err.splitlines()]

    def lines_of_records(self, first, last):
        """What dump prints for records [first, last) alone."""
        return self.dump_of(self.raw[self.starts[first]:self.starts[last]], "part")[1].splitlines()

    def message_record(self):
        """The index of a BGP4MP MESSAGE record in the middle of the file."""
        return next(i for i in range(len(self.starts) // 2, len(self.starts) - 1)
                    if self.raw[self.starts[i] + 4:self.starts[i] + 8] == b"\x00\x10\x00\x04")

    def test_a_cut_gzip_stream_is_named_and_the_records_before_it_are_kept(self):
        packed = gzip.compress(self.raw, mtime=0)
        cut = len(packed) * 2 // 3
        rc, out, err = self.dump_of(packed[:cut])
        self.assertEqual(rc, 3)
        self.assertEqual(err[0], f"gzip stream truncated at compressed byte {cut}")
        self.assertRegex(err[1], r"^offset \d+: truncated record( header \(\d+ bytes at the end of the stream\)|: "
                                 r"header says \d+ bytes, \d+ left)$")
        self.assertRegex(err[2], r"^1 damaged record skipped or read in part \(\d+ bytes of the stream skipped\); "
                                 r"the compressed stream is damaged$")
        complete = len(readable(packed[:cut]))
        k = max(i for i, s in enumerate(self.starts) if s <= complete)
        self.assertEqual(out.splitlines(), self.lines_of_records(0, k))

    def test_a_gzip_crc_or_length_mismatch_is_reported_after_the_records(self):
        packed = gzip.compress(self.raw, mtime=0)
        # The trailer: CRC-32, then the length; zlib stops after the field that does not match.
        for at, what, where in ((len(packed) - 8, "CRC", len(packed) - 4), (len(packed) - 1, "length", len(packed))):
            with self.subTest(what):
                data = bytearray(packed)
                data[at] ^= 0x55
                rc, out, err = self.dump_of(bytes(data))
                self.assertEqual(rc, 3)
                self.assertEqual(err, [f"gzip {what} mismatch at compressed byte {where}: the records read "
                                       "from this gzip member may be corrupt", "the compressed stream is damaged"])
                self.assertEqual(out.splitlines(), self.full)

    def test_gzip_members_are_read_one_after_the_other_and_trailing_bytes_are_reported(self):
        middle = self.starts[len(self.starts) // 2]
        members = gzip.compress(self.raw[:middle], mtime=0) + gzip.compress(self.raw[middle:], mtime=0)
        self.assertEqual(self.dump_of(members), (0, b"\n".join(self.full) + b"\n", []))
        rc, out, err = self.dump_of(members + b"garbage!")
        self.assertEqual((rc, out.splitlines()), (3, self.full))
        self.assertEqual(err, [f"gzip: 8 bytes after the end of the gzip data at compressed byte {len(members)} are "
                               "not a gzip stream (ignored)", "the compressed stream is damaged"])

    def test_bzip2_streams_cut_corrupt_and_concatenated(self):
        middle = self.starts[len(self.starts) // 2]
        streams = bz2.compress(self.raw[:middle]) + bz2.compress(self.raw[middle:])
        self.assertEqual(self.dump_of(streams), (0, b"\n".join(self.full) + b"\n", []))
        cut = len(streams) - 100
        rc, out, err = self.dump_of(streams[:cut])
        self.assertEqual(rc, 3)
        self.assertEqual(err[0], f"bzip2 stream truncated at compressed byte {cut}")
        self.assertEqual(out.splitlines(), self.lines_of_records(0, len(self.starts) // 2))  # whole blocks only
        data = bytearray(streams)
        data[len(streams) - 200] ^= 0x10  # in the second stream's block
        rc, out, err = self.dump_of(bytes(data))
        self.assertEqual(rc, 3)
        self.assertRegex(err[0], r"^bzip2 data corrupt at compressed byte \d+ \(a block's CRC or coding does not "
                                 r"check out\): the records read from this block may be corrupt; the rest of the "
                                 r"file is not read$")
        self.assertEqual(out.splitlines()[:len(self.lines_of_records(0, len(self.starts) // 2))],
                         self.lines_of_records(0, len(self.starts) // 2))

    def with_length(self, i, length, marker=True):
        data = bytearray(self.raw)
        data[self.starts[i] + 8:self.starts[i] + 12] = struct.pack(">I", length)
        if not marker:  # the BGP marker damaged too: the record's fields no longer say its length
            afi = struct.unpack(">H", self.raw[self.starts[i] + 22:self.starts[i] + 24])[0]  # MESSAGE_AS4
            data[self.starts[i] + 12 + 12 + (32 if afi == 2 else 8)] ^= 0xff
        return bytes(data)

    def test_an_implausible_length_is_named_and_the_reader_goes_on_at_the_next_record(self):
        i = self.message_record()
        at, size = self.starts[i], self.starts[i + 1] - self.starts[i] - 12
        # The BGP message says how long the record is: read as that.
        rc, out, err = self.dump_of(self.with_length(i, 0xFFFFFFFF))
        self.assertEqual((rc, out.splitlines()), (3, self.full))
        self.assertEqual(err, [f"offset {at}: implausible record length 4294967295 for type 16 (BGP4MP), at most "
                               f"65791: its fields end after {size} bytes, where the next record starts; read as "
                               f"{size} bytes", "1 damaged record skipped or read in part"])
        # Nothing says: the reader looks for the next plausible header (followed by another).
        rc, out, err = self.dump_of(self.with_length(i, 0xFFFFFFFF, marker=False))
        self.assertEqual(rc, 3)
        self.assertEqual(err[0], f"offset {at}: implausible record length 4294967295 for type 16 (BGP4MP), at "
                                 f"most 65791; skipped {size + 12} bytes to the next record header at offset "
                                 f"{self.starts[i + 1]}")
        self.assertEqual(out.splitlines(), self.lines_of_records(0, i) + self.full[len(self.lines_of_records(0, i + 1)):])

    def test_a_length_past_the_end_is_implausible_when_a_record_starts_inside_it_and_truncated_otherwise(self):
        i = self.message_record()
        at = self.starts[i]
        rc, out, err = self.dump_of(self.with_length(i, 60000, marker=False))
        self.assertEqual(rc, 3)
        self.assertEqual(err[0], f"offset {at}: implausible record length 60000 for type 16 (BGP4MP): the stream "
                                 f"ends {len(self.raw) - at - 12} bytes after the header, and a record starts "
                                 f"inside it; skipped {self.starts[i + 1] - at} bytes to that record at offset "
                                 f"{self.starts[i + 1]}")
        # The last record: nothing follows it, so it is cut.
        last = self.starts[-2]
        rc, out, err = self.dump_of(self.with_length(len(self.starts) - 2, 60000, marker=False))
        self.assertEqual(rc, 3)
        self.assertEqual(err[0], f"offset {last}: truncated record: header says 60000 bytes, "
                                 f"{len(self.raw) - last - 12} left")

    def test_a_length_that_swallows_the_next_records_is_caught_by_the_bgp_length(self):
        # The length points exactly at the header two records on: plausible in itself.
        i = self.message_record()
        at = self.starts[i]
        swallowing = self.starts[i + 2] - at - 12
        rc, out, err = self.dump_of(self.with_length(i, swallowing))
        self.assertEqual((rc, out.splitlines()), (3, self.full))
        size = self.starts[i + 1] - at - 12
        self.assertEqual(err[0], f"offset {at}: implausible record length {swallowing} for type 16 (BGP4MP): its "
                                 f"fields end after {size} bytes, where the next record starts; read as {size} bytes")

    def test_an_unknown_type_is_skipped_to_the_next_record(self):
        i = self.message_record()
        data = bytearray(self.raw)
        data[self.starts[i] + 4] = 0x7f
        rc, out, err = self.dump_of(bytes(data))
        self.assertEqual(rc, 3)
        length = self.starts[i + 1] - self.starts[i] - 12
        self.assertEqual(err[0], f"offset {self.starts[i]}: unknown MRT type 32528 (subtype 4, length {length}); "
                                 f"skipped {length + 12} bytes to the next record header at offset "
                                 f"{self.starts[i + 1]}")
        self.assertEqual(out.splitlines(), self.lines_of_records(0, i) + self.full[len(self.lines_of_records(0, i + 1)):])


if __name__ == "__main__":
    unittest.main()
