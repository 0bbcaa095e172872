"""CelebA files: the strict annotation parser, the writer, verification and the download path.

No test touches the internet: downloads go to a Google-Drive-like server on 127.0.0.1 that the
tests start, serving files the tests make.
"""

import hashlib
import http.server
import io
import re
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairgen.common.errors import DataError
from fairgen.data import celeba as C

# A hand-written sample in CelebA's exact text format (count line, header line, CelebA's spacing),
# modelled on the first rows of the real release.
ATTR = """3
5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young 
000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1  1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1
000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1
000003.jpg -1 -1 -1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1  1  1 -1 -1  1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1  1
"""
LANDMARKS = """3
lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y
000001.jpg    69  109  106  113   77  142   73  152  108  154
000002.jpg    69  110  107  112   81  135   70  151  108  153
000003.jpg    76  112  104  106  108  128   74  156   98  158
"""
PARTITION = """000001.jpg 0
000002.jpg 1
000003.jpg 2
"""
IDENTITY = """000001.jpg 2880
000002.jpg 2937
000003.jpg 8692
"""
BBOX = """3
image_id x_1 y_1 width height
000001.jpg    95  71 226 313
000002.jpg    72  94 221 306
000003.jpg   216  59  91 126
"""
SAMPLE = {C.ATTR_FILE: ATTR, C.LANDMARKS_FILE: LANDMARKS, C.PARTITION_FILE: PARTITION,
          C.IDENTITY_FILE: IDENTITY, C.BBOX_FILE: BBOX}


def write_sample(root: Path, files=SAMPLE, newline="\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_bytes(text.replace("\n", newline).encode())
    return root


def random_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(1, n + 1)],
                       "split": np.array(C.SPLITS, dtype=object)[rng.integers(0, 3, n)]})
    for a in C.ATTRIBUTE_NAMES:
        df[a] = rng.integers(0, 2, n).astype(np.int8)
    for c in C.LANDMARK_NAMES:
        df[c] = rng.integers(0, 218, n).astype(np.int32)
    df["identity"] = rng.integers(1, 10178, n).astype(np.int32)
    for c in C.BBOX_COLUMNS:
        df[c] = rng.integers(0, 1000, n).astype(np.int32)
    return df[list(C.COLUMNS)]


# ------------------------------------------------------------------ parsing real-format files


def test_constants_match_celeba():
    assert len(C.ATTRIBUTE_NAMES) == 40 and len(set(C.ATTRIBUTE_NAMES)) == 40
    assert C.ATTRIBUTE_NAMES[0] == "5_o_Clock_Shadow" and C.ATTRIBUTE_NAMES[20] == "Male"
    assert C.ATTRIBUTE_NAMES[2] == "Attractive" and C.ATTRIBUTE_NAMES[-1] == "Young"
    assert [f.name for f in C.CELEBA_FILES] == [C.IMAGE_ZIP, C.ATTR_FILE, C.IDENTITY_FILE, C.BBOX_FILE,
                                                 C.LANDMARKS_FILE, C.PARTITION_FILE]
    assert all(re.fullmatch(r"[0-9a-f]{32}", f.md5) for f in C.CELEBA_FILES)
    assert {f.name: f.md5 for f in C.CELEBA_FILES}[C.IMAGE_ZIP] == "00d2c5bc6d35e252742224ab0c1e8fcb"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parse_handwritten_celeba_sample(tmp_path, newline):
    df = C.read_celeba(write_sample(tmp_path, newline=newline))
    assert list(df.columns) == list(C.COLUMNS)
    assert df["image_id"].tolist() == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert df["split"].tolist() == ["train", "valid", "test"]
    first = df.iloc[0]
    assert (first["Arched_Eyebrows"], first["Attractive"], first["Male"], first["Smiling"], first["Young"]) == (1, 1, 0, 1, 1)
    assert (first["5_o_Clock_Shadow"], first["Eyeglasses"], first["Bald"]) == (0, 0, 0)
    assert df["Male"].tolist() == [0, 0, 1]
    assert df.loc[0, list(C.LANDMARK_NAMES)].tolist() == [69, 109, 106, 113, 77, 142, 73, 152, 108, 154]
    assert df["identity"].tolist() == [2880, 2937, 8692]
    assert df.loc[0, list(C.BBOX_COLUMNS)].tolist() == [95, 71, 226, 313]
    assert all(df[a].dtype == np.int8 for a in C.ATTRIBUTE_NAMES)
    assert set(np.unique(df[list(C.ATTRIBUTE_NAMES)].to_numpy())) <= {0, 1}
    assert all(np.issubdtype(df[c].dtype, np.integer) for c in (*C.LANDMARK_NAMES, "identity", *C.BBOX_COLUMNS))


def test_rows_are_aligned_by_image_id_not_by_order(tmp_path):
    files = dict(SAMPLE)
    files[C.PARTITION_FILE] = "000003.jpg 2\n000001.jpg 0\n000002.jpg 1\n"
    files[C.IDENTITY_FILE] = "000002.jpg 2937\n000003.jpg 8692\n000001.jpg 2880\n"
    df = C.read_celeba(write_sample(tmp_path, files))
    assert df["split"].tolist() == ["train", "valid", "test"]
    assert df["identity"].tolist() == [2880, 2937, 8692]


def test_tolerates_trailing_blank_lines_and_leading_spaces(tmp_path):
    files = dict(SAMPLE)
    files[C.ATTR_FILE] = ATTR + "\n\n"
    files[C.BBOX_FILE] = BBOX.replace("000002.jpg", "  000002.jpg")
    df = C.read_celeba(write_sample(tmp_path, files))
    assert len(df) == 3 and df.loc[1, "bbox_x_1"] == 72


def test_write_read_round_trip(tmp_path):
    df = random_frame(500, seed=3)
    C.write_annotations(tmp_path, df)
    back = C.read_celeba(tmp_path)
    pd.testing.assert_frame_equal(back, df.astype({"image_id": str, "split": str}))
    # CelebA's layout: count line, header, values right-aligned in 2 characters.
    lines = (tmp_path / C.ATTR_FILE).read_text().splitlines()
    assert lines[0] == "500" and lines[1].split() == list(C.ATTRIBUTE_NAMES)
    assert re.fullmatch(r"000001\.jpg( (-1| 1)){40}", lines[2])
    assert (tmp_path / C.BBOX_FILE).read_text().splitlines()[1] == "image_id x_1 y_1 width height"
    assert (tmp_path / C.PARTITION_FILE).read_text().splitlines()[0] in {"000001.jpg 0", "000001.jpg 1", "000001.jpg 2"}


def test_full_size_parse_is_fast(tmp_path):
    import time

    df = random_frame(C.N_IMAGES, seed=1)
    C.write_annotations(tmp_path, df)
    t = time.process_time()  # CPU time: robust to other processes sharing the machine
    back = C.read_celeba(tmp_path)
    elapsed = time.process_time() - t
    assert len(back) == C.N_IMAGES
    # about 1-2 s of CPU; a per-row Python parser would take far longer
    assert elapsed < 10, f"read_celeba took {elapsed:.1f} s of CPU for {C.N_IMAGES} rows"


# ------------------------------------------------------------------ bad input names file and line


def _replace_line(text: str, lineno: int, new: str) -> str:
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


ROW1 = ATTR.split("\n")[2]
BAD_CASES = [
    # (file, new text, expected line, message fragment)
    (C.ATTR_FILE, _replace_line(ATTR, 1, "4"), 1, "count line says 4 images but the file has 3"),
    (C.ATTR_FILE, _replace_line(ATTR, 1, "many"), 1, "expected the number of images"),
    (C.ATTR_FILE, _replace_line(ATTR, 2, ATTR.split("\n")[1].replace("Smiling", "Smile")), 2, "'Smile', expected 'Smiling'"),
    (C.ATTR_FILE, _replace_line(ATTR, 4, ATTR.split("\n")[3] + "  1"), 4, "expected 41 values"),
    (C.ATTR_FILE, _replace_line(ATTR, 3, ROW1[:-3]), 3, "expected 41 values (image id + 40 attributes), found 40"),
    (C.ATTR_FILE, _replace_line(ATTR, 3, ROW1[:11] + " 0" + ROW1[13:]), 3, "attribute '5_o_Clock_Shadow' of 000001.jpg is 0, expected -1 or 1"),
    (C.ATTR_FILE, _replace_line(ATTR, 5, ATTR.split("\n")[4].replace(" 1", " 2", 1)), 5, "expected -1 or 1"),
    (C.ATTR_FILE, _replace_line(ATTR, 4, ATTR.split("\n")[3].replace("-1", "x", 1)), 4, "is 'x'"),
    (C.ATTR_FILE, _replace_line(ATTR, 4, ATTR.split("\n")[3].replace("000002", "000001")), 4, "000001.jpg is duplicated (first on line 3)"),
    (C.ATTR_FILE, _replace_line(ATTR, 4, ""), 4, "blank line"),
    (C.ATTR_FILE, _replace_line(ATTR, 4, ATTR.split("\n")[3].replace("000002.jpg", "a/b.jpg")), 4, "not an image file name"),
    (C.LANDMARKS_FILE, _replace_line(LANDMARKS, 4, LANDMARKS.split("\n")[3].replace("110", "1l0")), 4, "landmark 'lefteye_y' of 000002.jpg is '1l0'"),
    (C.LANDMARKS_FILE, _replace_line(LANDMARKS, 5, LANDMARKS.split("\n")[4].replace("128", "12.8")), 5, "landmark 'nose_y'"),
    (C.LANDMARKS_FILE, _replace_line(LANDMARKS, 2, "lefteye_x lefteye_y"), 2, "header does not match"),
    (C.LANDMARKS_FILE, _replace_line(LANDMARKS, 3, LANDMARKS.split("\n")[2].replace("69", "99999999999", 1)), 3,
     "landmark 'lefteye_x' of 000001.jpg is 99999999999, expected an integer from -2147483647 to 2147483647"),
    (C.LANDMARKS_FILE, _replace_line(LANDMARKS, 4, LANDMARKS.split("\n")[3].replace("000002", "000009")), 4, "unknown image id 000009.jpg"),
    (C.PARTITION_FILE, _replace_line(PARTITION, 2, "000002.jpg 3"), 2, "split code of 000002.jpg is 3, expected 0, 1 or 2"),
    (C.PARTITION_FILE, PARTITION + "000004.jpg 0\n", 4, "unknown image id 000004.jpg (not in list_attr_celeba.txt)"),
    (C.PARTITION_FILE, _replace_line(PARTITION, 3, "000003.jpg"), 3, "expected 2 values"),
    (C.IDENTITY_FILE, _replace_line(IDENTITY, 1, "000001.jpg -5"), 1, "identity of 000001.jpg is -5"),
    (C.IDENTITY_FILE, _replace_line(IDENTITY, 2, "000001.jpg 7"), 2, "duplicated (first on line 1)"),
    (C.BBOX_FILE, _replace_line(BBOX, 2, "image_id x1 y1 w h"), 2, "name 2 is 'x1', expected 'x_1'"),
    (C.BBOX_FILE, _replace_line(BBOX, 5, "000003.jpg 216 59 91"), 5, "expected 5 values"),
]


@pytest.mark.parametrize("name, text, line, fragment", BAD_CASES,
                         ids=[f"{c[0]}:{c[2]}:{c[3][:25]}" for c in BAD_CASES])
def test_bad_input_names_file_and_line(tmp_path, name, text, line, fragment):
    files = dict(SAMPLE)
    files[name] = text
    with pytest.raises(DataError) as e:
        C.read_celeba(write_sample(tmp_path, files))
    msg = str(e.value)
    assert f"{name}, line {line}:" in msg, msg
    assert fragment in msg, msg


def test_id_missing_from_another_file_names_both(tmp_path):
    files = dict(SAMPLE)
    files[C.IDENTITY_FILE] = "000001.jpg 2880\n000003.jpg 8692\n"
    with pytest.raises(DataError) as e:
        C.read_celeba(write_sample(tmp_path, files))
    msg = str(e.value)
    assert "000002.jpg" in msg and "list_attr_celeba.txt, line 4" in msg and "missing from identity_CelebA.txt" in msg


def test_missing_file_and_non_ascii(tmp_path):
    write_sample(tmp_path)
    (tmp_path / C.BBOX_FILE).unlink()
    with pytest.raises(DataError, match="list_bbox_celeba.txt: file not found"):
        C.read_celeba(tmp_path)
    write_sample(tmp_path)
    (tmp_path / C.IDENTITY_FILE).write_bytes(IDENTITY.replace("000002.jpg 2937", "000002.jpg 29\xe97").encode("latin-1"))
    with pytest.raises(DataError, match=r"identity_CelebA.txt, line 2: non-ASCII"):
        C.read_celeba(tmp_path)


def test_error_line_numbers_in_a_large_file(tmp_path):
    df = random_frame(3000, seed=5)
    C.write_annotations(tmp_path, df)
    p = tmp_path / C.LANDMARKS_FILE
    lines = p.read_text().split("\n")
    lines[2500 - 1] = lines[2500 - 1].rsplit(" ", 1)[0] + " nan"
    p.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"list_landmarks_align_celeba.txt, line 2500: landmark 'rightmouth_y'"):
        C.read_celeba(tmp_path)


def test_image_path(tmp_path):
    assert C.image_path(tmp_path, "000001.jpg") == tmp_path / "img_align_celeba" / "000001.jpg"
    for bad in ("../x.jpg", "a/b.jpg", "", 5):
        with pytest.raises(DataError):
            C.image_path(tmp_path, bad)


# ------------------------------------------------------------------ verification


def _files_for(root: Path) -> tuple:
    """CelebAFile entries whose MD5s are those of the files in ``root`` (for test data)."""
    return tuple(C.CelebAFile(f.name, f.gdrive_id, C.md5sum(root / f.name) if (root / f.name).exists() else f.md5)
                 for f in C.CELEBA_FILES)


def test_verify_reports_all_problems_in_one_error(tmp_path):
    root = write_sample(tmp_path / "celeba")
    files = _files_for(root)
    (root / C.IMAGE_DIR).mkdir()
    for i in ("000001.jpg", "000002.jpg", "000003.jpg"):
        (root / C.IMAGE_DIR / i).write_bytes(b"jpeg")
    C.verify_celeba(root, check_md5=True, files=files)  # complete and correct
    (root / C.BBOX_FILE).unlink()
    (root / C.IDENTITY_FILE).write_text(IDENTITY.replace("2880", "2881"))
    (root / C.IMAGE_DIR / "000002.jpg").unlink()
    with pytest.raises(DataError) as e:
        C.verify_celeba(root, check_md5=True, files=files)
    msg = str(e.value)
    assert "list_bbox_celeba.txt: missing" in msg
    assert "identity_CelebA.txt: MD5" in msg
    assert "1 of 3 images missing (000002.jpg)" in msg
    with pytest.raises(DataError) as e:
        C.verify_celeba(root, check_md5=False, files=files)
    assert "identity_CelebA.txt" not in str(e.value) and "list_bbox_celeba.txt: missing" in str(e.value)


def test_verify_against_official_md5s_rejects_other_files(tmp_path):
    root = write_sample(tmp_path)
    (root / C.IMAGE_DIR).mkdir()
    with pytest.raises(DataError, match="list_attr_celeba.txt: MD5"):
        C.verify_celeba(root)


# ------------------------------------------------------------------ download


def _zip_bytes(names=("000001.jpg", "000002.jpg", "000003.jpg"), prefix=C.IMAGE_DIR + "/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in names:
            zf.writestr(prefix + n, f"fake jpeg {n}".encode())
    return buf.getvalue()


class FakeDrive:
    """A Google-Drive-like server on 127.0.0.1 only, bounded: it stops by itself after
    ``max_requests`` requests or ``lifetime`` seconds, whichever comes first.

    ``GET /uc?id=ID``: the file with a Content-Disposition header (as Drive sends it). Ids in
    ``confirm`` answer first with Drive's virus-scan warning page, a form to
    drive.usercontent.google.com/download with hidden id/export/confirm/uuid inputs; only the
    confirmed request gets the bytes. Ids in ``html`` answer with that HTML page (quota, permission).
    With :func:`route_drive`, gdown's requests to Google's hosts reach this server, so gdown's own
    Drive logic runs against it.
    """

    def __init__(self, blobs: dict[str, bytes], confirm=(), html: dict[str, str] | None = None,
                 max_requests: int = 50, lifetime: float = 60.0):
        self.blobs, self.confirm, self.html = blobs, set(confirm), html or {}
        self.requests: list[str] = []
        self.max_requests, self.lifetime = max_requests, lifetime
        self._stop = threading.Event()
        drive = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                drive.requests.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                fid = q.get("id")
                if fid in drive.html:
                    return self._send(drive.html[fid].encode(), "text/html; charset=utf-8")
                if fid not in drive.blobs:
                    return self.send_error(404)
                if fid in drive.confirm and url.path == "/uc":
                    page = ('<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
                            '<p>Google Drive can\'t scan this file for viruses.</p>'
                            '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
                            '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                            f'<input type="hidden" name="id" value="{fid}"><input type="hidden" name="export" value="download">'
                            '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="1234-abcd">'
                            '</form></body></html>')
                    return self._send(page.encode(), "text/html; charset=utf-8")
                if fid in drive.confirm and not (url.path == "/download" and q.get("uuid") == "1234-abcd"):
                    return self.send_error(403)
                self._send(drive.blobs[fid], "application/octet-stream", f'attachment; filename="{fid}"')

            def _send(self, body: bytes, ctype: str, disposition: str | None = None):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                if disposition:
                    self.send_header("Content-Disposition", disposition)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 0.1
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.netloc}/uc"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.requests) < self.max_requests:
            self.server.handle_request()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(timeout=5)
        self.server.server_close()


GOOGLE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")


@pytest.fixture
def route_drive(monkeypatch):
    """Send every request of the ``requests`` library (gdown's transport) for Google's hosts to a
    FakeDrive; any other host but 127.0.0.1 fails the test (nothing leaves this machine)."""
    import requests

    original = requests.adapters.HTTPAdapter.send

    def install(drive: FakeDrive):
        def send(self, request, *args, **kwargs):
            parts = urllib.parse.urlsplit(request.url)
            if parts.hostname in GOOGLE_HOSTS:
                request.url = urllib.parse.urlunsplit(("http", drive.netloc, parts.path, parts.query, ""))
            assert urllib.parse.urlsplit(request.url).hostname == "127.0.0.1", request.url
            return original(self, request, *args, **kwargs)

        monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)

    return install


def _release(tmp_path) -> tuple[dict, tuple]:
    """Blobs by Drive id for a tiny fake release and the CelebAFile list with their MD5s."""
    content = {name: text.encode() for name, text in SAMPLE.items()}
    content[C.IMAGE_ZIP] = _zip_bytes()
    files = tuple(C.CelebAFile(f.name, f.gdrive_id, hashlib.md5(content[f.name]).hexdigest()) for f in C.CELEBA_FILES)
    return {f.gdrive_id: content[f.name] for f in files}, files


def test_download_through_gdown_with_drive_confirm_page_then_parse(tmp_path, route_drive):
    """The default Drive URL: gdown's own Drive logic (virus-scan form) against the fake Drive."""
    blobs, files = _release(tmp_path)
    root = tmp_path / "celeba"
    with FakeDrive(blobs, confirm={files[0].gdrive_id}) as drive:
        route_drive(drive)
        C.download_celeba(root, progress=False, files=files)  # base_url: https://drive.google.com/uc
    assert sorted(p.name for p in (root / C.IMAGE_DIR).iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert (root / C.IMAGE_DIR / "000002.jpg").read_bytes() == b"fake jpeg 000002.jpg"
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "temporary files left behind"
    assert any(r.startswith("/download?") and "uuid=1234-abcd" in r for r in drive.requests)  # gdown followed the form
    C.verify_celeba(root, check_md5=True, files=files)  # good files pass the MD5 check
    assert C.read_celeba(root)["identity"].tolist() == [2880, 2937, 8692]
    # A second run finds everything in place and fetches nothing.
    with FakeDrive(blobs) as drive:
        route_drive(drive)
        C.download_celeba(root, progress=False, files=files)
    assert drive.requests == []


QUOTA_PAGE = ('<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>\n'
              '<p class="uc-error-caption">Sorry, you can&#39;t view or download this file at this time.</p>\n'
              '<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please '
              'try accessing the file again later. If the file you are trying to access is particularly large or is '
              'shared with many people, it may take up to 24 hours to be able to view or download the file.</p>\n'
              '</body></html>\n')
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Google Drive: Sign-in</title></head><body>Sign in</body></html>"


@pytest.mark.parametrize("page, reason", [(QUOTA_PAGE, "download quota exceeded"), (SIGN_IN_PAGE, "permission")])
@pytest.mark.parametrize("via", ["drive", "mirror"])
def test_drive_refusal_is_one_line_naming_the_alternatives(tmp_path, route_drive, page, reason, via):
    """Drive answers with a refusal page: through gdown's Drive logic (via='drive') or saved as the
    file by a plain download (via='mirror', the failure people see as a 'corrupt zip')."""
    blobs, files = _release(tmp_path)
    root = tmp_path / "celeba"
    with FakeDrive(blobs, html={files[0].gdrive_id: page}) as drive, pytest.raises(DataError) as e:
        route_drive(drive)
        C.download_celeba(root, progress=False, files=files,
                          **({"base_url": drive.url} if via == "mirror" else {}))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{C.IMAGE_ZIP}: Google Drive refused the download ("), msg
    assert reason in msg.split(";")[0], msg
    assert "Kaggle" in msg and "celeba_local" in msg
    assert list(root.iterdir()) == [], "nothing may be written when Drive refuses"


def test_download_md5_mismatch_removes_file_and_names_it(tmp_path):
    blobs, files = _release(tmp_path)
    attr = files[1]
    blobs[attr.gdrive_id] = blobs[attr.gdrive_id].replace(b"-1", b" 1", 1)  # corrupted in transit
    root = tmp_path / "celeba"
    with FakeDrive(blobs) as drive, pytest.raises(DataError) as e:
        C.download_celeba(root, progress=False, base_url=drive.url, files=files)
    msg = str(e.value)
    assert C.ATTR_FILE in msg and attr.md5 in msg and "bad download deleted" in msg
    assert not (root / C.ATTR_FILE).exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert (root / C.IMAGE_ZIP).exists()  # files before it were fine and are kept


def test_download_replaces_a_present_file_with_wrong_md5(tmp_path):
    blobs, files = _release(tmp_path)
    root = tmp_path / "celeba"
    root.mkdir()
    (root / C.BBOX_FILE).write_text("truncated")
    with FakeDrive(blobs) as drive:
        C.download_celeba(root, progress=False, base_url=drive.url, files=files)
    assert (root / C.BBOX_FILE).read_text() == BBOX


def test_download_unreachable_server_is_a_data_error(tmp_path):
    blobs, files = _release(tmp_path)
    with FakeDrive(blobs) as drive:
        url = drive.url
    with pytest.raises(DataError, match="download failed"):
        C.download_celeba(tmp_path / "celeba", progress=False, base_url=url, files=files)


def test_injected_fetch_transport(tmp_path):
    blobs, files = _release(tmp_path)
    seen = []

    def fetch(url, dest, progress):
        fid = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["id"]
        seen.append(url)
        dest.write_bytes(blobs[fid])

    C.download_celeba(tmp_path / "c", progress=False, base_url="https://mirror.example/uc", fetch=fetch,
                      files=files, keep_zip=False)
    assert len(seen) == 6 and all(u.startswith("https://mirror.example/uc?id=") for u in seen)
    assert not (tmp_path / "c" / C.IMAGE_ZIP).exists() and (tmp_path / "c" / C.IMAGE_DIR / "000003.jpg").exists()


def test_zip_with_escaping_member_is_rejected(tmp_path):
    z = tmp_path / C.IMAGE_ZIP
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("img_align_celeba/000001.jpg", b"x")
        zf.writestr("img_align_celeba/../../evil.txt", b"x")
    z.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="unexpected member"):
        C.extract_images(z, tmp_path)
    assert not (tmp_path / C.IMAGE_DIR).exists() and not (tmp_path.parent / "evil.txt").exists()
    z.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        C.extract_images(z, tmp_path)
