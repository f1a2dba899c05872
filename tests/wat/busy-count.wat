;; A well-behaved but busy command: counts to 3,000,000,000 in a tight loop (a second or a few
;; of pure wasm work), then exits 0. It must finish whatever else runs on the same engine.
(component
  (core module $m
    (func (export "run") (result i32)
      (local $i i64)
      (loop $count
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br_if $count (i64.lt_u (local.get $i) (i64.const 3000000000))))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))
