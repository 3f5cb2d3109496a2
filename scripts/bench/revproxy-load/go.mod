module gostash.bench/revproxy-load

go 1.24
