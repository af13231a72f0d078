// The source of loft_test_pch (tests/CMakeLists.txt): the precompiled header is its product.
