"""Dataset parsers: split sizes against the published protocols,
camera assignment, seeded determinism, Market junk/distractors and
multi-query pools, CUHK03 from a MATLAB v7.3 file, merging offsets, and
every bad-input case, on small trees in each dataset's real layout
(tests/fixtures_datasets.py)."""
import os
import shutil

import numpy as np
import pytest

from tests import fixtures_datasets as fx
from data_prep import cuhk01, cuhk03, ilids, market1501, prid2011, viper
from data_prep.errors import DatasetError, check_num_classes
from data_prep.images import load_bgr
from data_prep.merge import merge_splits
from data_prep.split_format import validate_split


def pids(split, idx):
    return [split["images"][i]["pid"] for i in idx]


def cams(split, idx):
    return [split["images"][i]["cam"] for i in idx]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The read-only trees, written once per module."""
    root = str(tmp_path_factory.mktemp("datasets"))
    return {"root": root, "market": fx.make_market(root), "viper": fx.make_viper(root),
            "prid": fx.make_prid(root), "cuhk01": fx.make_cuhk01(root), "ilids": fx.make_ilids(root)}


def copy_tree(src, tmp_path):
    dst = os.path.join(str(tmp_path), os.path.basename(src))
    shutil.copytree(src, dst)
    return dst


# --- Market-1501 ------------------------------------------------------------

def test_market_sets_junk_and_distractors(trees):
    s = market1501.parse(trees["market"])
    t = s["trials"][0]
    assert len(s["trials"]) == 1 and len(s["images"]) == 6 + 14 + 6 + 15
    assert sorted(set(pids(s, t["train"]))) == list(fx.MARKET_TRAIN_IDS)
    # labels contiguous in person-id order: 2 -> 0, 7 -> 1, 10 -> 2
    assert [lab for _, lab in sorted(zip(pids(s, t["train"]), t["train_labels"]))] == [0, 0, 1, 1, 2, 2]
    gallery = pids(s, t["gallery"])
    assert gallery.count(-1) == 2 and gallery.count(0) == 3 and len(gallery) == 9 + 5
    assert sorted(set(pids(s, t["query"]))) == list(fx.MARKET_TEST_IDS) and len(t["query"]) == 6
    by_path = {im["path"]: im for im in s["images"]}
    assert by_path["bounding_box_test/0000_c6s1_000551_01.jpg"]["cam"] == 6
    assert by_path["bounding_box_test/-1_c2s1_000676_01.jpg"]["pid"] == -1
    assert {im["set"] for im in s["images"]} == {"bounding_box_train", "bounding_box_test", "query", "gt_bbox"}
    assert not any(p.endswith("Thumbs.db") for p in by_path)


def test_market_multi_query_pools(trees):
    s = market1501.parse(trees["market"])
    t = s["trials"][0]
    assert sorted(int(q) for q in t["multi_query"]) == t["query"]
    for q, pool in t["multi_query"].items():
        q = int(q)
        qim = s["images"][q]
        assert pool[0] == q
        assert all((s["images"][i]["pid"], s["images"][i]["cam"]) == (qim["pid"], qim["cam"]) for i in pool)
        assert all(s["images"][i]["set"] == "gt_bbox" for i in pool[1:])
        # camera 1: the query + the 2 other gt_bbox frames (its own gt file not twice); camera 2: alone
        assert len(pool) == (3 if qim["cam"] == 1 else 1)
        assert os.path.basename(qim["path"]) not in [os.path.basename(s["images"][i]["path"]) for i in pool[1:]]
    assert "multi_query" not in market1501.parse(trees["market"], multi_query=False)["trials"][0]


def test_market_root_is_archive_or_parent(trees):
    a = market1501.parse(trees["root"])
    b = market1501.parse(trees["market"])
    assert a == b and a["root"] == os.path.abspath(trees["market"])


def test_market_bad_input(trees, tmp_path):
    top = copy_tree(trees["market"], tmp_path)
    os.rename(os.path.join(top, "query"), os.path.join(top, "Query"))
    with pytest.raises(DatasetError, match="missing 'query'"):
        market1501.parse(top)
    os.rename(os.path.join(top, "Query"), os.path.join(top, "query"))

    bad = fx.write_image(os.path.join(top, "query", "img_0001.jpg"))
    with pytest.raises(DatasetError, match="img_0001.jpg does not follow"):
        market1501.parse(top)
    os.remove(bad)

    dup = fx.write_image(os.path.join(top, "bounding_box_train", fx.market_name(2, 1, 101)[:-4] + ".JPG"))
    with pytest.raises(DatasetError, match="duplicate file name .*0002_c1s1_000101_01"):
        market1501.parse(top)
    os.remove(dup)

    empty = os.path.join(top, "gt_bbox", fx.market_name(3, 4, 999))
    open(empty, "wb").close()
    with pytest.raises(DatasetError, match="empty image file: .*0003_c4s1_000999_01.jpg"):
        market1501.parse(top)
    os.remove(empty)

    victim = os.path.join(top, "bounding_box_test", fx.market_name(5, 3, 203))
    data = open(victim, "rb").read()
    with open(victim, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated JPEG
    market1501.parse(top)  # names and sizes are fine: only full decoding sees it
    with pytest.raises(DatasetError, match="unreadable image .*0005_c3s1_000203_01.jpg"):
        market1501.parse(top, verify_images=True)

    with pytest.raises(DatasetError, match="root not found"):
        market1501.parse(os.path.join(str(tmp_path), "nowhere"))


def test_market_person_ids_and_cameras_are_checked(trees, tmp_path):
    """The official regex ([-\\d]+)_c(\\d) lets through a person '0-0-2' (int()
    then failed without naming the file) and cameras c0, c7-c9 (accepted,
    though Market has 6)."""
    top = copy_tree(trees["market"], tmp_path)
    bad = fx.write_image(os.path.join(top, "bounding_box_train", "0-0-2_c1s1_000101_01.jpg"))
    with pytest.raises(DatasetError, match="file name .*bounding_box_train/0-0-2_c1s1_000101_01.jpg: "
                                           "person id '0-0-2' is neither -1"):
        market1501.parse(top)
    os.remove(bad)
    for cam in (0, 7):
        bad = fx.write_image(os.path.join(top, "query", fx.market_name(3, cam, 999)))
        with pytest.raises(DatasetError, match="file name .*query/0003_c%ds1_000999_01.jpg: camera c%d "
                                               "is not one of Market's c1-c6" % (cam, cam)):
            market1501.parse(top)
        os.remove(bad)
    ok = market1501.parse(top)  # -1, 0000 and c6 are fine
    assert ok["images"] == market1501.parse(trees["market"])["images"]


# --- VIPeR --------------------------------------------------------------------

def test_viper_halves_cameras_and_seeds(trees):
    s = viper.parse(trees["viper"])
    assert len(s["trials"]) == 10
    for t in s["trials"]:
        assert len(t["train"]) == 632 and len(set(t["train_labels"])) == 316
        assert len(t["query"]) == 316 and len(t["gallery"]) == 316
        assert set(cams(s, t["query"])) == {1} and set(cams(s, t["gallery"])) == {2}
        assert pids(s, t["query"]) == pids(s, t["gallery"])
        assert not set(pids(s, t["query"])) & set(pids(s, t["train"]))
    assert viper.parse(trees["viper"]) == s                      # reproducible
    assert s["trials"][0]["query"] != s["trials"][1]["query"]    # trials differ
    other = viper.parse(trees["viper"], seed=1)
    assert other["trials"][0]["query"] != s["trials"][0]["query"]
    by_path = {im["path"]: im for im in s["images"]}
    assert by_path["cam_b/017_90.bmp"]["pid"] == 18 and by_path["cam_b/017_90.bmp"]["cam"] == 2
    assert by_path["cam_a/000_45.bmp"]["pid"] == 1  # ids <= 0 mean junk/distractor in the format


def test_viper_bad_input(trees, tmp_path):
    top = copy_tree(trees["viper"], tmp_path)
    extra = fx.write_image(os.path.join(top, "cam_a", "005_135.bmp"))
    with pytest.raises(DatasetError, match="duplicate person id in cam_a 5: cam_a/005_135.bmp and cam_a/005_45.bmp"):
        viper.parse(top)
    os.remove(extra)
    os.remove(os.path.join(top, "cam_b", "007_90.bmp"))
    with pytest.raises(DatasetError, match="person 007 has no image in .*cam_b"):
        viper.parse(top)


# --- PRID2011 -------------------------------------------------------------------

def test_prid_gallery_649(trees):
    s = prid2011.parse(trees["prid"])
    assert len(s["trials"]) == 10
    for t in s["trials"]:
        assert len(t["train"]) == 200 and len(set(t["train_labels"])) == 100
        assert len(t["query"]) == 100 and len(t["gallery"]) == 649
        assert set(cams(s, t["query"])) == {1} and set(cams(s, t["gallery"])) == {2}
        q, g = set(pids(s, t["query"])), set(pids(s, t["gallery"]))
        assert q < g and max(q) <= 200
        assert sorted(g - q) == list(range(2201, 2750))          # cam B persons 201–749
        assert not q & set(pids(s, t["train"]))
    by_path = {im["path"]: im for im in s["images"]}
    assert by_path["cam_a/person_0201.png"]["pid"] == 1201      # not the same person as
    assert by_path["cam_b/person_0201.png"]["pid"] == 2201      # cam B's person 201
    assert by_path["cam_a/person_0150.png"]["pid"] == by_path["cam_b/person_0150.png"]["pid"] == 150
    assert prid2011.parse(trees["prid"]) == s


def test_prid_bad_input(trees, tmp_path):
    top = copy_tree(trees["prid"], tmp_path)
    os.remove(os.path.join(top, "single_shot", "cam_b", "person_0005.png"))
    with pytest.raises(DatasetError, match="person_0005.png missing from .*cam_b"):
        prid2011.parse(top)
    fx.write_image(os.path.join(top, "single_shot", "cam_b", "person_0005.png"))
    fx.write_image(os.path.join(top, "single_shot", "cam_a", "person_005.png"))
    with pytest.raises(DatasetError, match="duplicate person number in cam_a 5"):
        prid2011.parse(top)
    shutil.rmtree(os.path.join(top, "single_shot", "cam_a"))
    with pytest.raises(DatasetError, match=r"single_shot: missing 'cam_a' \(found: cam_b\)"):
        prid2011.parse(top)


def test_prid_names_the_missing_camera(trees, tmp_path):
    """With only cam_a extracted, the error names cam_b (it used to say that
    both were missing, from the root the user gave)."""
    top = copy_tree(trees["prid"], tmp_path)
    shutil.rmtree(os.path.join(top, "single_shot", "cam_b"))
    for root in (top, os.path.join(top, "single_shot")):
        with pytest.raises(DatasetError) as err:
            prid2011.parse(root)
        assert str(err.value) == "prid2011 root %s: missing 'cam_b' (found: cam_a)" % os.path.join(
            top, "single_shot")


# --- CUHK01 ---------------------------------------------------------------------

def test_cuhk01_protocols(trees):
    s = cuhk01.parse(trees["cuhk01"])  # 485/486, single-shot
    for t in s["trials"]:
        assert len(t["train"]) == 970 and len(set(t["train_labels"])) == 485
        assert len(t["query"]) == 486 and len(t["gallery"]) == 486
        assert set(cams(s, t["query"])) == {1} and set(cams(s, t["gallery"])) == {2}
        assert pids(s, t["query"]) == pids(s, t["gallery"])
    picked = {s["images"][i]["path"][-7:] for t in s["trials"] for i in t["query"]}
    assert picked == {"001.png", "002.png"}  # drawn among camera A's two images
    s = cuhk01.parse(trees["cuhk01"], protocol="871/100")
    assert len(s["trials"]) == 10
    for t in s["trials"]:
        assert len(t["train"]) == 871 * 4 and len(set(t["train_labels"])) == 871
        assert len(t["query"]) == 200 and len(t["gallery"]) == 200
        assert len(set(pids(s, t["query"]))) == 100
    by_path = {im["path"]: im for im in s["images"]}
    assert [by_path["campus/0042%03d.png" % k]["cam"] for k in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert cuhk01.parse(trees["cuhk01"], protocol="871/100") == s


def test_cuhk01_bad_input(trees, tmp_path):
    with pytest.raises(DatasetError, match="unknown protocol"):
        cuhk01.parse(trees["cuhk01"], protocol="500/471")
    top = os.path.join(str(tmp_path), "CUHK01")
    fx.write_image(os.path.join(top, "campus", "0001001.png"))
    fx.write_image(os.path.join(top, "campus", "0001005.png"))
    with pytest.raises(DatasetError, match="index 005 of campus/0001005.png"):
        cuhk01.parse(top)
    os.remove(os.path.join(top, "campus", "0001005.png"))
    with pytest.raises(DatasetError, match="person 0001 has no camera B image"):
        cuhk01.parse(top)


# --- i-LIDS -----------------------------------------------------------------------

def test_ilids_halves_and_pseudo_cameras(trees, tmp_path):
    s = ilids.parse(trees["ilids"])
    assert len(s["images"]) == 476 and len({im["pid"] for im in s["images"]}) == 119
    for t in s["trials"]:
        assert len(set(t["train_labels"])) == 59 and len(t["train"]) == 59 * 4
        assert len(t["query"]) == len(t["gallery"]) == 60
        assert pids(s, t["query"]) == pids(s, t["gallery"])
        assert set(cams(s, t["query"])) == {1} and set(cams(s, t["gallery"])) == {2}
    assert ilids.parse(trees["ilids"]) == s
    top = fx.make_ilids(str(tmp_path), counts=[2, 3, 5])
    s = ilids.parse(top)
    assert [im["cam"] for im in s["images"]] == [1, 2, 1, 1, 2, 1, 1, 1, 2, 2]


def test_ilids_bad_input(tmp_path):
    top = fx.make_ilids(str(tmp_path), counts=[2, 1, 3])
    with pytest.raises(DatasetError, match="person 0002 has only one image .*0002001.jpg"):
        ilids.parse(top)
    with pytest.raises(DatasetError, match="missing 'Persons'"):
        ilids.parse(str(tmp_path / "i-LIDS_Pedestrian" / "Persons"))


# --- CUHK03 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cuhk03_tree(tmp_path_factory):
    return fx.make_cuhk03(str(tmp_path_factory.mktemp("cuhk03")))


def test_cuhk03_classic_protocol(cuhk03_tree, tmp_path):
    img_dir = str(tmp_path / "png")
    s = cuhk03.parse(cuhk03_tree, image_dir=img_dir, num_val=5)
    assert s["root"] == os.path.abspath(img_dir)
    # pairs 1–3: 12 + 9 + 6 = 27 persons; every 3rd one lacks 2 cells (4 + 3 + 2 persons)
    assert len(s["images"]) == 27 * 10 - 2 * 9
    assert s["protocol"]["empty_cells"] == 2 * (4 + 3 + 2 + 1 + 0)
    assert len(s["trials"]) == 20
    testsets = fx.cuhk03_testsets()
    for t, ts in zip(s["trials"], testsets):
        test_ids = {1000 * p + n for p, n in ts}
        assert set(pids(s, t["query"])) == test_ids == set(pids(s, t["gallery"]))
        assert all(c % 2 == 1 for c in cams(s, t["query"])) and all(c % 2 == 0 for c in cams(s, t["gallery"]))
        assert len(set(pids(s, t["val"]))) == 5 and len(set(t["train_labels"])) == 27 - 4 - 5
        assert not set(pids(s, t["val"])) & set(pids(s, t["train"])) | test_ids & set(pids(s, t["train"]))
    # one image checked by hand: pair 2, person 4, cell 7 -> view 2, camera 4, values as written (RGB)
    im = [im for im in s["images"] if im["path"] == "labeled/2_004_2_07.png"][0]
    assert (im["pid"], im["cam"]) == (2004, 4)
    expected = fx.tiny_image(1000 * 2 + 10 * 4 + 6, h=6 + 6 % 3, w=3)
    np.testing.assert_array_equal(load_bgr(os.path.join(img_dir, im["path"]))[:, :, ::-1], expected)
    assert not os.path.exists(os.path.join(img_dir, "labeled", "1_003_1_05.png"))  # empty cell
    assert cuhk03.parse(cuhk03_tree, image_dir=img_dir, num_val=5) == s          # reproducible


def test_cuhk03_extracts_once_and_detected(cuhk03_tree, tmp_path):
    img_dir = str(tmp_path / "png")
    cuhk03.parse(cuhk03_tree, image_dir=img_dir, num_val=5)
    probe = os.path.join(img_dir, "labeled", "1_001_1_01.png")
    before = os.stat(probe).st_mtime_ns
    os.utime(probe, ns=(before - 10 ** 9, before - 10 ** 9))
    cuhk03.parse(cuhk03_tree, image_dir=img_dir, num_val=5)
    assert os.stat(probe).st_mtime_ns == before - 10 ** 9  # reused, not rewritten
    d = cuhk03.parse(cuhk03_tree, version="detected", image_dir=img_dir, num_val=5)
    im = [im for im in d["images"] if im["path"] == "detected/2_004_2_07.png"][0]
    expected = fx.tiny_image(100000 + 1000 * 2 + 10 * 4 + 6, h=6, w=3)
    np.testing.assert_array_equal(load_bgr(os.path.join(img_dir, im["path"]))[:, :, ::-1], expected)
    os.remove(probe)  # a cached image gone: named, not silently missing
    with pytest.raises(DatasetError, match="image not found: .*1_001_1_01.png"):
        cuhk03.parse(cuhk03_tree, image_dir=img_dir, num_val=5)


def test_cuhk03_new_protocol(cuhk03_tree, tmp_path):
    names = fx.cuhk03_file_list()
    top = copy_tree(cuhk03_tree, tmp_path)
    with pytest.raises(DatasetError, match="needs cuhk03_new_protocol_config_labeled.mat"):
        cuhk03.parse(top, protocol="new", image_dir=str(tmp_path / "png"))
    first = [i for i, n in enumerate(names) if n.startswith("1_")]
    rest = [i for i, n in enumerate(names) if not n.startswith("1_")]
    query = [i for i in rest if names[i][6] == "1"]
    gallery = [i for i in rest if names[i][6] == "2"]
    fx.make_cuhk03_new_config(top, "labeled", first, query, gallery, names)
    s = cuhk03.parse(top, protocol="new", image_dir=str(tmp_path / "png"))
    t = s["trials"][0]
    assert len(s["trials"]) == 1 and len(s["images"]) == len(names)
    assert [os.path.basename(s["images"][i]["path"]) for i in t["train"]] == [names[i] for i in first]
    assert len(set(t["train_labels"])) == 12 and len(t["query"]) == len(query)
    assert set(pids(s, t["query"])) == set(pids(s, t["gallery"])) and min(pids(s, t["query"])) > 2000
    fx.make_cuhk03_new_config(top, "labeled", first + [len(names)], query, gallery,
                              names + ["1_003_1_05.png"])  # an empty cell's name
    with pytest.raises(DatasetError, match="filelist entry '1_003_1_05.png' has no extracted image"):
        cuhk03.parse(top, protocol="new", image_dir=str(tmp_path / "png"))
    fx.make_cuhk03_new_config(top, "labeled", first, query + [len(names) + 5], gallery, names)
    with pytest.raises(DatasetError, match="query_idx holds indices outside filelist"):
        cuhk03.parse(top, protocol="new", image_dir=str(tmp_path / "png"))


def test_cuhk03_bad_input(tmp_path):
    top = fx.make_cuhk03(str(tmp_path / "a"), keys=("labeled", "detected"))
    with pytest.raises(DatasetError, match="cuhk-03.mat: missing key 'testsets'"):
        cuhk03.parse(top, image_dir=str(tmp_path / "png"))
    top = fx.make_cuhk03(str(tmp_path / "b"), bad_cell=(1, 2, 3))
    with pytest.raises(DatasetError, match=r"labeled\{1\}\(2,3\): neither an image nor an empty cell"):
        cuhk03.parse(top, image_dir=str(tmp_path / "png"))
    assert not os.path.exists(str(tmp_path / "png" / "labeled"))  # nothing half-extracted
    assert os.listdir(str(tmp_path / "png")) == []
    top = str(tmp_path / "c" / "cuhk03_release")
    os.makedirs(top)
    with open(os.path.join(top, "cuhk-03.mat"), "wb") as f:
        f.write(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(DatasetError, match="cuhk-03.mat: not a MATLAB v7.3"):
        cuhk03.parse(str(tmp_path / "c"))
    with pytest.raises(DatasetError, match="missing 'cuhk-03.mat'"):
        cuhk03.parse(str(tmp_path))


# --- merging and identity counts ----------------------------------------------------

def test_merge_offsets_and_paths(trees):
    m = market1501.parse(trees["market"])
    v = viper.parse(trees["viper"])
    s = merge_splits([m, v])
    validate_split(s)
    n_m = len(m["images"])
    assert s["dataset"] == "market1501+viper" and len(s["images"]) == n_m + len(v["images"])
    assert s["root"] == os.path.abspath(trees["root"])
    for im in s["images"]:
        assert os.path.isfile(os.path.join(s["root"], im["path"])) and not os.path.isabs(im["path"])
    (t,) = s["trials"]
    assert t["train"] == m["trials"][0]["train"] + [i + n_m for i in v["trials"][0]["train"]]
    assert t["train_labels"] == m["trials"][0]["train_labels"] + [lab + 3 for lab in v["trials"][0]["train_labels"]]
    assert t["query"] == t["gallery"] == []
    # person ids: viper's shifted past Market's largest (10); junk and distractors unchanged
    assert s["images"][n_m]["pid"] == v["images"][0]["pid"] + 11
    assert sorted({im["pid"] for im in s["images"][:n_m]}) == [-1, 0, 1, 2, 3, 5, 7, 10]
    assert {im["dataset"] for im in s["images"]} == {"market1501", "viper"}

    s = merge_splits([v, m], eval_from=0)   # MTDnet-aug: viper is the target
    assert len(s["trials"]) == 10
    for mt, vt in zip(s["trials"], v["trials"]):
        assert mt["query"] == vt["query"] and mt["gallery"] == vt["gallery"]
        assert len(set(mt["train_labels"])) == 316 + 3
    s = merge_splits([v, m], eval_from=1)
    off = len(v["images"])
    assert s["trials"][0]["multi_query"] == {str(int(q) + off): [i + off for i in p]
                                             for q, p in m["trials"][0]["multi_query"].items()}
    with pytest.raises(DatasetError, match="no trial 3"):
        merge_splits([m, v], trials=[3, 0])


def test_label_beyond_identity_count(trees):
    s = market1501.parse(trees["market"])
    check_num_classes(s, 3)
    with pytest.raises(DatasetError, match="train_labels go up to 2, beyond the net's 2 identities"):
        check_num_classes(s, 2)
