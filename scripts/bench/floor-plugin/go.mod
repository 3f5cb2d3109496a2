module gostash.invalid/bench/floor-plugin

go 1.26
