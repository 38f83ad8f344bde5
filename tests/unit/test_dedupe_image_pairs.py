"""Pairing the faces of two near-duplicate source images by where their boxes sit."""

import numpy as np

from preprocess.dedupe.image_pairs import FacesByImage, faces_of_image_pairs, relative_box


def test_boxes_are_placed_relative_to_their_image_and_unusable_ones_are_left_out():
    assert relative_box([100, 50, 40, 20], 400, 200) == (0.25, 0.25, 0.1, 0.1)
    assert relative_box([0, 0, 0, 10], 400, 200) is None
    assert relative_box([0, 0, 10, 10], 0, 200) is None
    assert relative_box(None, 400, 200) is None
    assert relative_box(["a", 0, 10, 10], 400, 200) is None


def test_a_resized_copy_pairs_each_face_with_the_same_face_not_its_neighbour():
    # image 0: two faces side by side; image 1: the same picture at 75 %, boxes a few pixels off
    faces_by_image = [[(0, [40, 60, 100, 100]), (1, [260, 60, 100, 100])], [(2, [198, 48, 72, 76]), (3, [33, 44, 78, 74])]]
    edges = faces_of_image_pairs(np.array([[0, 1]]), faces_by_image, [(400, 300), (300, 225)], 0.5)
    assert sorted(map(tuple, edges.tolist())) == [(0, 3), (1, 2)]


def test_faces_that_do_not_overlap_enough_stay_apart():
    faces_by_image = [[(0, [0, 0, 100, 100])], [(1, [60, 60, 100, 100])]]  # IoU 0.09
    assert faces_of_image_pairs(np.array([[0, 1]]), faces_by_image, [(400, 400), (400, 400)], 0.5).shape == (0, 2)
    assert faces_of_image_pairs(np.array([[0, 1]]), faces_by_image, [(400, 400), (400, 400)], 0.05).tolist() == [[0, 1]]


def test_images_without_usable_faces_or_pairs_give_no_edges():
    faces_by_image = [[(0, [0, 0, 100, 100])], [], [(1, None)]]
    sizes = [(400, 400)] * 3
    assert faces_of_image_pairs(np.array([[0, 1], [0, 2]]), faces_by_image, sizes, 0.5).shape == (0, 2)
    assert faces_of_image_pairs(np.empty((0, 2), dtype=np.int64), faces_by_image, sizes, 0.5).shape == (0, 2)


def test_faces_are_listed_under_their_image_in_face_order_and_faces_of_other_images_left_out():
    # faces 0..4 of images 1, 0, none of these, -, 1; face 3's box is not four numbers
    boxes = np.arange(20, dtype=np.float64).reshape(5, 4)
    grouped = FacesByImage(np.array([1, 0, -1, 1, 1]), boxes, np.array([True, True, True, False, True]), images=3)
    assert len(grouped) == 3
    assert grouped[0] == [(1, (4.0, 5.0, 6.0, 7.0))]
    assert grouped[1] == [(0, (0.0, 1.0, 2.0, 3.0)), (3, None), (4, (16.0, 17.0, 18.0, 19.0))]
    assert grouped[2] == []
