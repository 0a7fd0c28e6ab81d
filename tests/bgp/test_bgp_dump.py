"""`vantage bgp dump`: byte-identical to bgpdump's golden `-m` outputs, and robust on damaged
input (every file of tests/data/bgp parses without a crash; damage is reported on stderr and the
records before and after it are still printed)."""
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

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
        for digest, lines, name in expected:
            with self.subTest(file=name):
                rc, out, err = dump(os.path.join(DATA, "bgpdump", name))
                self.assertEqual(rc, 0, err)
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
                self.assertEqual(rc, 0, err)
                self.assertNotIn("Sanitizer", err)

    def test_a_cut_bzip2_rib_keeps_every_complete_record_and_says_it_was_cut(self):
        rc, out, err = dump(os.path.join(DATA, "damaged", "rib.20140523.0600_firstMB.bz2"))
        self.assertEqual(rc, 0)
        self.assertIn("bzip2: the compressed stream ends early (truncated file)", err)
        self.assertIn("truncated record", err)
        # Same count as bgpdump 1.6.2 on this file (../shared/data/bgp/PROVENANCE.md).
        self.assertEqual(out.count(b"\n"), 270005)

    def test_rib_records_without_a_peer_index_table_are_reported(self):
        rc, out, err = dump(os.path.join(DATA, "damaged", "bview.20140112.1600_3samples.bz2"))
        self.assertEqual((rc, out), (0, b""))
        self.assertEqual(err.count("RIB record before any PEER_INDEX_TABLE"), 3)

    def test_zebras_truncated_records_are_reported_and_the_rest_is_read(self):
        rc, out, err = dump(os.path.join(DATA, "damaged", "rrc01.updates.20001104.0124.gz"))
        self.assertEqual(rc, 0)
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
        self.assertEqual(rc, 0)
        self.assertIn(f"offset {target}: BGP4MP UPDATE", err)
        self.assertIn("truncated record", err)
        bad_lines = bad_out.splitlines()
        self.assertGreater(len(before), 50)
        self.assertGreater(len(after), 1000)
        self.assertEqual(bad_lines[:len(before)], before)
        self.assertEqual(bad_lines[-len(after):], after)

if __name__ == "__main__":
    unittest.main()
