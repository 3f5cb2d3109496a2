module gostash.invalid/bench/floor-bridge

go 1.26
