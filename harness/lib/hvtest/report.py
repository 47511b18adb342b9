"""Reports: the summary line, JUnit XML (and merging shards' files), TAP."""

import os
import time

MAX_SYSTEM_OUT = 1 << 20  # bytes of transcript kept in a JUnit file per test


def counts(results):
    c = {"passed": 0, "failed": 0, "skipped": 0, "flaky": 0}
    for r in results:
        c[r.verdict] += 1
        c["flaky"] += r.flaky
    return c


def summary_line(results):
    """'N passed, M failed' (', K skipped' and ' (F flaky)' when there are any)."""
    c = counts(results)
    line = f"{c['passed']} passed, {c['failed']} failed"
    if c["flaky"]:
        line += f" ({c['flaky']} flaky)"
    if c["skipped"]:
        line += f", {c['skipped']} skipped"
    return line


def all_passed(results):
    c = counts(results)
    return c["failed"] == 0 and c["skipped"] == 0


def milestone_text(result):
    parts = []
    multi = any(m["boot"] > 1 for m in result.milestones)
    for m in result.milestones:
        prefix = f"boot {m['boot']}: " if multi else ""
        parts.append(f"{prefix}{m['name']} {m['t']:.2f}s")
    return ", ".join(parts)


def split_id(test_id):
    """'harness/examples/hello' -> ('harness.examples', 'hello')."""
    head, _, name = test_id.rpartition("/")
    return (head.replace("/", ".") or "hvtest"), name


def _transcript(result):
    path = os.path.join(result.result_dir, "transcript.txt")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SYSTEM_OUT + 1)
    except OSError:
        return ""
    text = data[:MAX_SYSTEM_OUT].decode("utf-8", "replace")
    if len(data) > MAX_SYSTEM_OUT:
        text += f"\n... (cut: the whole transcript is {path})\n"
    return text


def _clean(text):
    """Characters XML 1.0 cannot carry become U+FFFD."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff"
                   else "\ufffd" for ch in text)


def junit_element(results, name="hvtest"):
    import socket  # here, not at the top: most runs write no JUnit, and
    import xml.etree.ElementTree as ET  # every hvtest start paid for both
    c = counts(results)
    total_time = sum(r.duration for r in results)
    suite = ET.Element("testsuite", {
        "name": name, "tests": str(len(results)), "failures": str(c["failed"]),
        "errors": "0", "skipped": str(c["skipped"]), "time": f"{total_time:.3f}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": socket.gethostname(),
    })
    for r in results:
        classname, case_name = split_id(r.test_id)
        case = ET.SubElement(suite, "testcase", {
            "classname": classname, "name": case_name, "time": f"{r.duration:.3f}",
            "file": r.path})
        if r.verdict == "failed":
            body = "\n".join(r.details + ["", "last lines:"] + r.tail)
            f = ET.SubElement(case, "failure", {"message": _clean(r.reason), "type": "flaky" if r.flaky else "failed"})
            f.text = _clean(body)
        elif r.verdict == "skipped":
            ET.SubElement(case, "skipped", {"message": _clean(r.reason)})
        out = ET.SubElement(case, "system-out")
        head = f"milestones: {milestone_text(r)}\n" if r.milestones else ""
        if r.runs:
            head += f"runs: {', '.join(r.runs)}\n"
        out.text = _clean(head + _transcript(r))
    return suite


def write_xml(root, path):
    import xml.etree.ElementTree as ET
    root_el = root if root.tag == "testsuites" else _wrap(root)
    ET.indent(root_el)
    tmp = path + ".tmp"
    ET.ElementTree(root_el).write(tmp, encoding="UTF-8", xml_declaration=True)
    os.replace(tmp, path)


def _wrap(suite):
    import xml.etree.ElementTree as ET
    top = ET.Element("testsuites", {k: suite.get(k) for k in ("name", "tests", "failures",
                                                              "errors", "skipped", "time")})
    top.append(suite)
    return top


def write_junit(results, path):
    write_xml(junit_element(results), path)


def merge_junit(inputs, output):
    """Merge JUnit files (e.g. from --shard runs) into one test suite."""
    import socket
    import xml.etree.ElementTree as ET
    cases = []
    for path in inputs:
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
        for s in suites:
            cases.extend(s.findall("testcase"))
    cases.sort(key=lambda c: (c.get("classname", ""), c.get("name", "")))
    failures = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    total_time = sum(float(c.get("time", "0") or 0) for c in cases)
    suite = ET.Element("testsuite", {
        "name": "hvtest", "tests": str(len(cases)), "failures": str(failures), "errors": "0",
        "skipped": str(skipped), "time": f"{total_time:.3f}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": socket.gethostname()})
    suite.extend(cases)
    write_xml(suite, output)
    return len(cases), failures, skipped


def tap_text(results):
    lines = ["TAP version 13", f"1..{len(results)}"]
    for i, r in enumerate(results, 1):
        desc = r.test_id.replace("#", "\\#")
        if r.verdict == "passed":
            lines.append(f"ok {i} - {desc}")
        elif r.verdict == "skipped":
            lines.append(f"ok {i} - {desc} # SKIP {r.reason}")
        else:
            lines.append(f"not ok {i} - {desc}")
            lines.append("  ---")
            lines.append(f"  message: {_yaml_str(r.reason)}")
            if r.flaky:
                lines.append(f"  runs: {_yaml_str(', '.join(r.runs))}")
            lines.append(f"  transcript: {_yaml_str(os.path.join(r.result_dir, 'transcript.txt'))}")
            lines.append("  ...")
    return "\n".join(lines) + "\n"


def _yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_tap(results, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(tap_text(results))
    os.replace(tmp, path)
