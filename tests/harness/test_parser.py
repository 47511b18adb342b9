"""The test file format: good files parse to what they say; every bad file
gives an error on the right line (docs/hvtest.md)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "harness", "lib"))

from hvtest import testfile as tf  # noqa: E402


def parse(text):
    return tf.parse_text(text, "t.hvt")


class GoodFiles(unittest.TestCase):
    def test_tiny_guest(self):
        s = parse("# The hello guest powers off\nguest hello\ntimeout 10s\n\n"
                  "expect \"hello from guest\" 5\nwait-exit poweroff\n")
        self.assertEqual(s.description, "The hello guest powers off")
        self.assertEqual((s.vm_kind, s.guest, s.timeout), ("guest", "hello", 10.0))
        self.assertEqual([st.kind for st in s.steps], ["expect", "wait-exit"])
        self.assertEqual(s.steps[0].pattern.pattern, "hello from guest")
        self.assertEqual(s.steps[0].timeout, 5.0)
        self.assertEqual(s.steps[0].line, 5)
        self.assertEqual(s.steps[1].exit.status, 1)

    def test_linux_settings(self):
        s = parse("linux\nmemory 1G\ncpus 2\ncmdline quiet loglevel=3\ncommand /bin/true --x\n"
                  "disk scratch 64M\ndisk img/disk.raw\nbhyve -s 3:0,virtio-rnd -o 'a=b c'\n"
                  "requires virtio-blk pvpanic\nprompt '\\$ $'\nmarker booted 'systemd.*ready'\n"
                  "allow-panic\nguest-status 0 30s\n")
        self.assertEqual((s.vm_kind, s.fixture, s.memory, s.cpus), ("fixture", "linux", "1G", 2))
        self.assertEqual(s.cmdline, "quiet loglevel=3")
        self.assertEqual(s.command, "/bin/true --x")
        self.assertEqual([(d.path, d.scratch_size) for d in s.disks],
                         [(None, "64M"), ("img/disk.raw", None)])
        self.assertEqual(s.bhyve_args, ["-s", "3:0,virtio-rnd", "-o", "a=b c"])
        self.assertEqual(s.requires, ["virtio-blk", "pvpanic"])
        self.assertEqual(s.prompt.pattern, "\\$ $")
        self.assertEqual(s.markers[0][0], "booted")
        self.assertTrue(s.allow_panic)
        self.assertEqual((s.steps[0].status, s.steps[0].timeout), (0, 30.0))

    def test_kernel_initrd(self):
        s = parse("kernel /boot/vmlinuz\ninitrd /boot/initrd.img\nexpect login:\n")
        self.assertEqual((s.vm_kind, s.kernel, s.initrd), ("kernel", "/boot/vmlinuz", "/boot/initrd.img"))

    def test_quoting(self):
        s = parse("guest echo\nexpect 'a\\.b'\nexpect \"say \\\"hi\\\" \\d+\"\nexpect plain\\d\n")
        self.assertEqual([st.pattern.pattern for st in s.steps], ["a\\.b", 'say "hi" \\d+', "plain\\d"])

    def test_send_escapes(self):
        s = parse("guest echo\nsend \"abc\\n\"\nsend '\\cC\\e[A\\x00\\t\\\\'\nsend héllo\n")
        self.assertEqual([st.data for st in s.steps],
                         [b"abc\n", b"\x03\x1b[A\x00\t\\", "héllo".encode()])

    def test_run_options(self):
        s = parse("linux\nrun echo \"a  b\" | grep -q a # not a comment\n"
                  "run -s 3 -t 10s sh -c 'exit 3'\nrun -s any false\n")
        self.assertEqual(s.steps[0].command, 'echo "a  b" | grep -q a # not a comment')
        self.assertEqual((s.steps[1].status, s.steps[1].timeout, s.steps[1].command), (3, 10.0, "sh -c 'exit 3'"))
        self.assertEqual(s.steps[2].status, "any")

    def test_net_and_host_steps(self):
        s = parse("linux\nnet user\nforward tcp 80\nforward udp 53 as DNS_PORT\n"
                  "run httpd\nhost -s 1 -t 10s curl -s http://127.0.0.1:$PORT_TCP_80/ # all of it\n"
                  "host-expect 'hello \\d'\nhost -s any true\n")
        self.assertEqual((s.net, s.net_line), ("virtio-net", 2))
        self.assertEqual([(f.line, f.proto, f.guest_port, f.name) for f in s.forwards],
                         [(3, "tcp", 80, "PORT_TCP_80"), (4, "udp", 53, "DNS_PORT")])
        host = s.steps[1]
        self.assertEqual((host.kind, host.status, host.timeout, host.command),
                         ("host", 1, 10.0, "curl -s http://127.0.0.1:$PORT_TCP_80/ # all of it"))
        self.assertEqual((s.steps[2].kind, s.steps[2].pattern.pattern), ("host-expect", "hello \\d"))
        self.assertEqual(s.steps[3].status, "any")
        self.assertEqual(parse("linux\nnet user e1000\nexpect x\n").net, "e1000")
        self.assertEqual(parse("linux\nnet user virtio-net\nexpect x\n").net, "virtio-net")

    def test_shares_and_console(self):
        s = parse("linux\nshare data\nshare ../x/y/ ro\nshare /srv/d as web\nshare results\n"
                  "share . ro as dot\nshare ..\nconsole virtio\nexpect x\n")
        self.assertEqual([(sh.line, sh.tag, sh.path, sh.ro, sh.results) for sh in s.shares],
                         [(2, "data", "data", False, False), (3, "y", "../x/y/", True, False),
                          (4, "web", "/srv/d", False, False), (5, "results", None, False, True),
                          (6, "dot", ".", True, False), (7, "share", "..", False, False)])
        self.assertEqual(s.console, "virtio")
        self.assertEqual(parse("linux\nexpect x\n").console, "com1")
        self.assertEqual(parse("linux\nshare a:b\nexpect x\n").shares[0].tag, "share")

    def test_host_steps_need_no_vm(self):
        # Host steps run before a boot and after wait-exit.
        s = parse("linux\nhost true\nwait-exit poweroff\nhost echo done\nhost-expect done\n")
        self.assertEqual([st.kind for st in s.steps], ["host", "wait-exit", "host", "host-expect"])

    def test_wait_exit_forms(self):
        s = parse("guest g\nwait-exit reboot 5s\nboot\nwait-exit 3\nboot\nwait-exit debug-exit 3\nboot\n"
                  "wait-exit debug-exit 0x10 1m\nboot\nwait-exit triple-fault\nboot\nwait-exit halt\n"
                  "boot\nwait-exit error\n")
        exits = [(st.exit.status, st.timeout) for st in s.steps if st.kind == "wait-exit"]
        self.assertEqual(exits, [(0, 5.0), (3, None), (7, None), (33, 60.0), (3, None), (2, None), (4, None)])

    def test_durations(self):
        self.assertEqual(tf.parse_duration("500ms"), 0.5)
        self.assertEqual(tf.parse_duration("2m"), 120)
        self.assertEqual(tf.parse_duration("1.5"), 1.5)
        self.assertEqual(tf.parse_duration("1h"), 3600)

    def test_expect_not_anywhere(self):
        s = parse("guest g\nexpect-not 'Kernel panic'\nexpect a\nexpect-not BUG:\nexpect b\n")
        self.assertEqual([st.pattern.pattern for st in s.expect_not], ["Kernel panic", "BUG:"])

    def test_sleep_and_milestone(self):
        s = parse("guest g\nsleep 250ms\nmilestone 'userspace up' 20s\n")
        self.assertEqual(s.steps[0].seconds, 0.25)
        self.assertEqual((s.steps[1].name, s.steps[1].timeout), ("userspace up", 20.0))

    def test_comments_and_blank_lines(self):
        s = parse("\n  # the first comment block is\n# the description\n\n# not this\nguest g\n   \n"
                  "\t# indented\nexpect x\n")
        self.assertEqual(s.description, "the first comment block is the description")
        self.assertEqual(s.steps[0].line, 9)

    def test_crlf_file(self):
        s = parse("guest g\r\nexpect x\r\n")
        self.assertEqual(s.steps[0].pattern.pattern, "x")

    def test_parse_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".hvt", delete=False) as f:
            f.write("guest g\nexpect x\n")
        try:
            self.assertEqual(tf.parse_file(f.name).guest, "g")
        finally:
            os.unlink(f.name)


# (file text, line of the error, words the message must contain)
BAD = [
    ("guest g\nexpct x\n", 2, "unknown keyword 'expct' (did you mean 'expect'?)"),
    ("guest g\nexpect\n", 2, "expect takes"),
    ("guest g\nexpect a b c\n", 2, "quote a pattern"),
    ("guest g\nexpect 'abc\n", 2, "unterminated ' quote"),
    ("guest g\nexpect \"abc\n", 2, 'unterminated " quote'),
    ("guest g\nexpect '('\n", 2, "bad regular expression"),
    ("guest g\nexpect ''\n", 2, "empty pattern"),
    ("guest g\nexpect-not\n", 2, "expect-not takes"),
    ("guest g\nsend\n", 2, "send takes"),
    ("guest g\nsend 'a\\q'\n", 2, "unknown escape \\q"),
    ("guest g\nsend '\\x4'\n", 2, "\\x needs two hex digits"),
    ("guest g\nsend 'a\\'\n", 2, "lone backslash"),
    ("guest g\nsend '\\c1'\n", 2, "\\c needs a letter"),
    ("linux\nrun\n", 2, "run needs a shell command"),
    ("linux\nrun -s 300 true\n", 2, "run -s"),
    ("linux\nrun -t soon true\n", 2, "bad duration 'soon'"),
    ("guest g\nrun true\n", 2, "run needs a shell prompt"),
    ("guest g\nwait-exit\n", 2, "wait-exit needs a status"),
    ("guest g\nwait-exit poweroof\n", 2, "did you mean 'poweroff'"),
    ("guest g\nwait-exit 256\n", 2, "not 0..255"),
    ("guest g\nwait-exit debug-exit\n", 2, "debug-exit needs the value"),
    ("guest g\nwait-exit poweroff now\n", 2, "unexpected 'now'"),
    ("guest g\nsleep\n", 2, "sleep takes"),
    ("guest g\nsleep forever\n", 2, "bad duration 'forever'"),
    ("guest g\nmilestone\n", 2, "milestone takes"),
    ("guest g\nguest-status x\n", 2, "guest-status takes"),
    ("guest g\nboot now\n", 2, "boot takes 0 arguments"),
    ("guest g\nexpect a\nboot\n", 3, "the VM is still running"),
    ("guest g\nwait-exit poweroff\nexpect a\n", 3, "after the VM exited (wait-exit on line 2)"),
    ("guest g\nexpect a\nmemory 32M\n", 3, "'memory' is a VM setting: put it before the first step"),
    ("guest g\nguest h\nexpect a\n", 2, "a second VM"),
    ("guest g\nlinux\nexpect a\n", 2, "a second VM"),
    ("guest\nexpect a\n", 1, "guest takes a guest name"),
    ("guest a/b\nexpect a\n", 1, "bad guest name"),
    ("guest-source x.S 8\nexpect a\n", 1, "mode must be 16, 32 or 64"),
    ("fixture Linux!\nexpect a\n", 1, "bad fixture name"),
    ("linux now\nexpect a\n", 1, "linux takes no arguments"),
    ("kernel\nexpect a\n", 1, "kernel takes"),
    ("guest g\nmemory lots\nexpect a\n", 2, "bad memory size 'lots'"),
    ("guest g\nmemory 32M\nmemory 64M\nexpect a\n", 3, "'memory' given twice (first on line 2)"),
    ("guest g\ncpus 0\nexpect a\n", 2, "not a positive number"),
    ("guest g\ntimeout 0\nexpect a\n", 2, "timeout must be more than 0"),
    ("guest g\ntimeout\nexpect a\n", 2, "timeout takes"),
    ("guest g\nbhyve\nexpect a\n", 2, "bhyve needs options"),
    ("guest g\nbhyve -s 'unclosed\nexpect a\n", 2, "bhyve: No closing quotation"),
    ("guest g\nrawload\nexpect a\n", 2, "rawload needs options"),
    ("guest g\nrequires\nexpect a\n", 2, "requires needs device names"),
    ("guest g\nprompt a b\nexpect a\n", 2, "prompt takes"),
    ("guest g\nmarker onlyname\nexpect a\n", 2, "marker takes"),
    ("guest g\nallow-panic yes\nexpect a\n", 2, "allow-panic takes 0"),
    ("guest g\ndisk\nexpect a\n", 2, "disk takes"),
    ("guest g\ndisk scratch lots\nexpect a\n", 2, "bad disk size"),
    ("guest g\ncommand\nexpect a\n", 2, "command needs"),
    ("# nothing\n\nexpect a\n", 3, "no VM"),
    ("# nothing at all\n", 1, "no VM"),
    ("guest g\n# no steps\n", 2, "no steps"),
    ("guest g\ninitrd /x\nexpect a\n", 2, "initrd goes with 'kernel PATH'"),
    ("guest g\ncmdline quiet\nexpect a\n", 2, "cmdline is for Linux guests"),
    ("guest g\ncommand true\nexpect a\n", 2, "command is for Linux guests"),
    ("linux\nrawload -r rcx=1\nexpect a\n", 1, "rawload options are for tiny guests"),
    ("linux\nnet\nexpect a\n", 2, "net takes 'user'"),
    ("linux\nnet tap0\nexpect a\n", 2, "net takes 'user'"),
    ("linux\nnet user e1000 x\nexpect a\n", 2, "net takes 'user'"),
    ("linux\nnet user e100\nexpect a\n", 2, "unknown NIC model 'e100'"),
    ("linux\nnet user\nnet user\nexpect a\n", 3, "'net' given twice"),
    ("linux\nforward tcp 80\nexpect a\n", 2, "forward needs a NIC: add 'net user'"),
    ("linux\nnet user\nforward\nexpect a\n", 3, "forward takes tcp|udp GUESTPORT"),
    ("linux\nnet user\nforward tcp\nexpect a\n", 3, "forward takes tcp|udp GUESTPORT"),
    ("linux\nnet user\nforward tcp 80 to WEB\nexpect a\n", 3, "forward takes"),
    ("linux\nnet user\nforward sctp 80\nexpect a\n", 3, "protocol 'sctp' is not tcp or udp"),
    ("linux\nnet user\nforward tcp 0\nexpect a\n", 3, "guest port '0' is not 1..65535"),
    ("linux\nnet user\nforward tcp 65536\nexpect a\n", 3, "guest port '65536'"),
    ("linux\nnet user\nforward tcp http\nexpect a\n", 3, "guest port 'http'"),
    ("linux\nnet user\nforward tcp 80 as 1WEB\nexpect a\n", 3, "'1WEB' is not a variable name"),
    ("linux\nnet user\nforward tcp 80\nforward tcp 80\nexpect a\n", 4,
     "PORT_TCP_80 is already the port of line 3"),
    ("linux\nexpect a\nnet user\n", 3, "'net' is a VM setting"),
    ("linux\nshare\nexpect a\n", 2, "share takes DIR [ro] [as TAG], or 'results'"),
    ("linux\nshare d rw\nexpect a\n", 2, "share takes DIR [ro] [as TAG]"),
    ("linux\nshare d ro ro\nexpect a\n", 2, "share takes DIR [ro] [as TAG]"),
    ("linux\nshare results ro\nexpect a\n", 2, "share results takes nothing more"),
    ("linux\nshare d as\nexpect a\n", 2, "share takes DIR"),
    ("linux\nshare d as a/b\nexpect a\n", 2, "share: bad tag 'a/b'"),
    ("linux\nshare d as ..\nexpect a\n", 2, "share: bad tag '..'"),
    ("linux\nshare x/d\nshare y/d\nexpect a\n", 3,
     "tag 'd' is already the share of line 2 (give another with 'as TAG')"),
    ("linux\nshare results\nshare r as results\nexpect a\n", 3, "tag 'results' is already"),
    ("linux\n" + "".join(f"share d{i}\n" for i in range(9)) + "expect a\n", 10,
     "at most 8 shares"),
    ("guest g\nshare d\nexpect a\n", 2, "share is for Linux guests"),
    ("linux\nexpect a\nshare d\n", 3, "'share' is a VM setting"),
    ("linux\nconsole\nexpect a\n", 2, "console takes virtio"),
    ("linux\nconsole hvc0\nexpect a\n", 2, "console takes virtio"),
    ("linux\nconsole virtio\nconsole com1\nexpect a\n", 3, "'console' given twice"),
    ("guest g\nconsole virtio\nexpect a\n", 2, "console virtio is for Linux guests"),
    ("linux\nhost\n", 2, "host needs a shell command"),
    ("linux\nhost -s x true\n", 2, "host -s: not a status"),
    ("linux\nhost -t never true\n", 2, "bad duration 'never'"),
    ("linux\nhost-expect x\n", 2, "put a 'host' step before it"),
    ("linux\nhost true\nhost-expect\n", 3, "host-expect takes"),
    ("linux\nhost true\nhost-expect '('\n", 3, "bad regular expression"),
]


class BadFiles(unittest.TestCase):
    def test_every_bad_case_names_its_line(self):
        for text, line, words in BAD:
            with self.subTest(text=text):
                with self.assertRaises(tf.ParseError) as cm:
                    parse(text)
                errors = cm.exception.errors
                self.assertEqual(errors[0][0], line, errors)
                self.assertIn(words, errors[0][1])
                self.assertTrue(cm.exception.first().startswith(f"t.hvt:{line}: "))

    def test_all_errors_are_reported(self):
        with self.assertRaises(tf.ParseError) as cm:
            parse("guest g\nmemory x\nexpct a\nexpect '('\n")
        self.assertEqual([e[0] for e in cm.exception.errors], [2, 3, 4])
        self.assertEqual(cm.exception.format().count("\n"), 2)

    def test_unreadable_file(self):
        with self.assertRaises(tf.ParseError) as cm:
            tf.parse_file("/nonexistent/x.hvt")
        self.assertIn("cannot read", cm.exception.first())

    def test_binary_file(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".hvt", delete=False) as f:
            f.write(b"guest g\n\xff\xfe\n")
        try:
            with self.assertRaises(tf.ParseError) as cm:
                tf.parse_file(f.name)
            self.assertIn("not UTF-8", cm.exception.first())
        finally:
            os.unlink(f.name)


class Examples(unittest.TestCase):
    def test_shipped_test_files_parse(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        n = 0
        for d in ("harness/examples", "tests/harness/cases"):
            for base, _, names in os.walk(os.path.join(root, d)):
                for name in names:
                    path = os.path.join(base, name)
                    if name == "bad-file.hvt":
                        with self.assertRaises(tf.ParseError) as cm:
                            tf.parse_file(path)
                        self.assertEqual(cm.exception.errors[0][0], 4)
                    elif name.endswith(".hvt"):
                        tf.parse_file(path)
                    n += 1
        self.assertGreater(n, 5)


if __name__ == "__main__":
    unittest.main()
