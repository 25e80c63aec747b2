"""Runtimes: the Restorer protocols (:mod:`.restorer`), GPEN in torch, eager or compiled
(:mod:`.torch_restorer`, :mod:`.compiled`), ONNX Runtime (:mod:`.onnx_restorer`), the device
and dtype (:mod:`.device`, :mod:`.memory`), and the kinds that build them (:mod:`.factory`)."""
