"""The network: GPEN as its authors compute it (:mod:`.layers`, :mod:`.gpen`), the fast path
(:mod:`.gpen_fast`), checkpoint loading (:mod:`.loader`) and ONNX export (:mod:`.onnx_export`)."""
