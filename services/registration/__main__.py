from services.registration.bootstrap import MIGRATIONS, SERVICE, build
from shared.runner import main

main(SERVICE, build, MIGRATIONS)
